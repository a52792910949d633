/*
 * Morpheus Shop loader kit (C): asks the shop's licence API whether a key is valid on this PC, and believes the
 * answer only when it is signed by the shop's pinned Ed25519 key and bound to this very request.
 *
 *   loader_auth <auth URL> <key> <uuid> <public key base64>
 *   exit 0: licence valid (verified); 1: the verified answer refuses the licence; 2: answer not trusted.
 *
 * Build: libcurl (transport), libsodium (Ed25519, SHA-256, CSPRNG, base64), cJSON (JSON). On Debian/Ubuntu:
 *   apt-get install build-essential libcurl4-openssl-dev libsodium-dev libcjson-dev && make
 * On Windows (MSVC + vcpkg: curl, libsodium, cjson) the same file builds as is: it uses standard C and those three
 * libraries only. licence_verify() does not even need libcurl, if your loader has its own HTTP client.
 *
 * In your loader, pin the key as a constant instead of taking it from the command line (see clients/README.md).
 * What a cracker tries, and what stops it here:
 *   - an emulator answering {"success":true}: no signature by the pinned key, refused;
 *   - a signature by the cracker's own key, listed in X-Signature: only the entry of the pinned key is used;
 *   - a real signed answer recorded once and replayed: it echoes another nonce (fresh from the CSPRNG each call);
 *   - a real answer for another key, PC or product: the echoed key, uuid and product must equal what we sent;
 *   - one byte of a real answer changed: the signature covers the exact bytes received, never re-serialised JSON;
 *   - a success body under a refusal status (or the reverse): status and body must agree.
 * What it cannot stop is a patched loader binary: see docs/licence-api.md for what helps there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>

enum verdict { LICENCE_VALID = 0, LICENCE_REFUSED = 1, LICENCE_UNTRUSTED = 2 };

/* Loader answers are under 1 kB; anything far bigger is not from the shop and is not read to the end. */
#define MAX_ANSWER_BYTES 16384
/* A real header carries one entry per active key (two during a rotation); more is noise. */
#define MAX_SIGNATURE_ENTRIES 8
/* docs/licence-api.md#checking-an-answer: server_time must be within 10 minutes of our clock. */
#define MAX_CLOCK_SKEW_SECONDS 600
#define NONCE_BYTES 24

struct answer {
  long status;
  int days, hours;
  char expires_at[40];
  char message[200];
  char reason[200]; /* why the answer is not trusted */
};

/* What we sent, which the signed answer must echo exactly. */
struct request {
  const char *product, *key, *uuid;
  char nonce[NONCE_BYTES * 2 + 1];
};

static enum verdict untrusted(struct answer *out, const char *reason) {
  snprintf(out->reason, sizeof out->reason, "%s", reason);
  return LICENCE_UNTRUSTED;
}

/* key id = first 16 hex characters of sha256(raw public key), as the shop lists it in X-Signature. */
static void key_id_of(const unsigned char public_key[crypto_sign_PUBLICKEYBYTES], char id[17]) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, public_key, crypto_sign_PUBLICKEYBYTES);
  sodium_bin2hex(id, 17, digest, 8);
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/*
 * X-Signature: "<key id>:<base64 sig>[, <key id>:<base64 sig>...]", newest key first. Only an entry labelled with
 * the pinned key's id is tried, and only with the pinned key: an entry for any other key proves nothing.
 */
static int signature_verifies(const char *header, const unsigned char *body, size_t body_len,
                              const unsigned char pinned_key[crypto_sign_PUBLICKEYBYTES]) {
  char pinned_id[17];
  const char *next = header;
  int entries = 0;
  key_id_of(pinned_key, pinned_id);
  while (*next != '\0' && entries++ < MAX_SIGNATURE_ENTRIES) {
    /* One entry is [id, end): "<key id>:<signature>", blanks around either part ignored. */
    const char *id = next, *end = next + strcspn(next, ","), *colon, *id_end, *sig;
    unsigned char signature[crypto_sign_BYTES];
    size_t signature_len = 0;
    next = *end == ',' ? end + 1 : end;
    colon = memchr(id, ':', (size_t)(end - id));
    if (colon == NULL) continue;
    while (id < colon && is_blank(*id)) id++;
    for (id_end = colon; id_end > id && is_blank(id_end[-1]); id_end--) continue;
    for (sig = colon + 1; sig < end && is_blank(*sig); sig++) continue;
    while (end > sig && is_blank(end[-1])) end--;
    if (id_end - id != 16 || memcmp(id, pinned_id, 16) != 0) continue;
    /* Refuses input that would decode to more than 64 bytes: no overflow whatever the header holds. */
    if (sodium_base642bin(signature, sizeof signature, sig, (size_t)(end - sig), NULL, &signature_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        signature_len == sizeof signature &&
        crypto_sign_verify_detached(signature, body, (unsigned long long)body_len, pinned_key) == 0)
      return 1;
  }
  return 0;
}

/* The answer echoes a field exactly as sent: same type (a string), same bytes, nothing more. */
static int echoes(const cJSON *answer, const char *field, const char *sent) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(answer, field);
  return cJSON_IsString(item) && item->valuestring != NULL && strcmp(item->valuestring, sent) == 0;
}

static int digits(const char *s, int n, int *value) {
  int i;
  *value = 0;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    *value = *value * 10 + (s[i] - '0');
  }
  return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm): no timegm, which Windows lacks. */
static long long days_from_civil(int y, int m, int d) {
  long long era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (what the shop sends) to seconds since the epoch; returns 0 if it is not that. */
static int parse_utc(const char *s, long long *seconds) {
  int y, mo, d, h, mi, sec;
  size_t i = 19;
  if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
      !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
      s[16] != ':' || !digits(s + 17, 2, &sec))
    return 0;
  if (s[i] == '.')
    for (i++; s[i] >= '0' && s[i] <= '9'; i++) continue;
  if (s[i] != 'Z' || s[i + 1] != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return 0;
  *seconds = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
  return 1;
}

/* A whole number in [0, 1e6] (days and hours of a licence); cJSON stores every number as a double. */
static int small_count(const cJSON *item, int *value) {
  if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0 && item->valuedouble <= 1e6)) return 0;
  *value = (int)item->valuedouble;
  return (double)*value == item->valuedouble;
}

/*
 * Everything that decides whether to believe an answer, given the HTTP status, the X-Signature header (NULL when
 * absent) and the exact body bytes received. Pure: no network, no clock of its own (now = time(NULL) in seconds).
 */
static enum verdict licence_verify(long status, const char *signature_header, const unsigned char *body,
                                   size_t body_len, const struct request *sent,
                                   const unsigned char pinned_key[crypto_sign_PUBLICKEYBYTES], long long now,
                                   struct answer *out) {
  cJSON *json;
  const char *json_end = NULL;
  const cJSON *success, *message, *server_time, *expires_at;
  long long server_seconds;
  enum verdict verdict;

  out->status = status;
  if (signature_header == NULL) return untrusted(out, "no X-Signature header");
  /* Verify before parsing anything: until then the body is a cracker's as much as the shop's. */
  if (!signature_verifies(signature_header, body, body_len, pinned_key))
    return untrusted(out, "no valid signature by the pinned key");

  json = cJSON_ParseWithLengthOpts((const char *)body, body_len, &json_end, 0);
  /* One JSON value and nothing after it but whitespace, as the Python and TypeScript parsers insist too. */
  while (json != NULL && json_end < (const char *)body + body_len &&
         (*json_end == ' ' || *json_end == '\t' || *json_end == '\r' || *json_end == '\n'))
    json_end++;
  if (json == NULL || json_end != (const char *)body + body_len) {
    cJSON_Delete(json);
    return untrusted(out, "answer is not JSON");
  }
  if (!cJSON_IsObject(json)) {
    cJSON_Delete(json);
    return untrusted(out, "answer is not a JSON object");
  }
  success = cJSON_GetObjectItemCaseSensitive(json, "success");
  message = cJSON_GetObjectItemCaseSensitive(json, "message");
  server_time = cJSON_GetObjectItemCaseSensitive(json, "server_time");
  expires_at = cJSON_GetObjectItemCaseSensitive(json, "expires_at");

  if (!echoes(json, "nonce", sent->nonce)) {
    verdict = untrusted(out, "answer is not for this request (nonce differs)");
  } else if (!echoes(json, "key", sent->key) || !echoes(json, "uuid", sent->uuid) ||
             !echoes(json, "product", sent->product)) {
    verdict = untrusted(out, "answer is for another key, uuid or product");
  } else if (!cJSON_IsString(server_time) || !parse_utc(server_time->valuestring, &server_seconds)) {
    verdict = untrusted(out, "answer has no valid server_time");
  } else if (server_seconds - now > MAX_CLOCK_SKEW_SECONDS || now - server_seconds > MAX_CLOCK_SKEW_SECONDS) {
    verdict = untrusted(out, "server_time is more than 10 minutes from this PC's clock");
  } else if (!cJSON_IsBool(success) || !cJSON_IsString(message)) {
    verdict = untrusted(out, "answer has no success or message");
  } else if (cJSON_IsTrue(success)) {
    /* A success is only a success with the 200 that goes with it, and with the licence's remaining time. */
    if (status != 200 || !small_count(cJSON_GetObjectItemCaseSensitive(json, "days"), &out->days) ||
        !small_count(cJSON_GetObjectItemCaseSensitive(json, "hours"), &out->hours) || !cJSON_IsString(expires_at) ||
        !parse_utc(expires_at->valuestring, &server_seconds)) {
      verdict = untrusted(out, "success answer does not match its HTTP status or lacks days/hours/expires_at");
    } else {
      snprintf(out->expires_at, sizeof out->expires_at, "%s", expires_at->valuestring);
      verdict = LICENCE_VALID;
    }
  } else if (status < 400 || status > 599) {
    verdict = untrusted(out, "refusal answer does not match its HTTP status");
  } else {
    snprintf(out->message, sizeof out->message, "%s", message->valuestring);
    verdict = LICENCE_REFUSED;
  }
  cJSON_Delete(json);
  return verdict;
}

struct buffer {
  unsigned char data[MAX_ANSWER_BYTES];
  size_t len;
};

static size_t collect_body(char *data, size_t size, size_t count, void *userdata) {
  struct buffer *buffer = userdata;
  size_t n;
  if (size != 0 && count > (size_t)-1 / size) return 0;
  n = size * count;
  if (n > sizeof buffer->data - buffer->len) return 0; /* too large: libcurl aborts the transfer */
  memcpy(buffer->data + buffer->len, data, n);
  buffer->len += n;
  return n;
}

/* POSTs {key, uuid, nonce} as JSON to the auth URL and verifies the answer. */
static enum verdict licence_check(const char *auth_url, struct request *sent,
                                  const unsigned char pinned_key[crypto_sign_PUBLICKEYBYTES], struct answer *out) {
  unsigned char raw_nonce[NONCE_BYTES];
  struct buffer *body = calloc(1, sizeof *body);
  cJSON *request = cJSON_CreateObject();
  char *request_json = NULL;
  CURL *curl = curl_easy_init();
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  struct curl_header *signature = NULL;
  enum verdict verdict = LICENCE_UNTRUSTED;
  CURLcode code;
  long status = 0;

  /* A fresh nonce from the CSPRNG for every call: an answer recorded earlier can never echo it. */
  randombytes_buf(raw_nonce, sizeof raw_nonce);
  sodium_bin2hex(sent->nonce, sizeof sent->nonce, raw_nonce, sizeof raw_nonce);

  if (body == NULL || request == NULL || curl == NULL || headers == NULL ||
      cJSON_AddStringToObject(request, "key", sent->key) == NULL ||
      cJSON_AddStringToObject(request, "uuid", sent->uuid) == NULL ||
      cJSON_AddStringToObject(request, "nonce", sent->nonce) == NULL ||
      (request_json = cJSON_PrintUnformatted(request)) == NULL) {
    untrusted(out, "out of memory");
    goto done;
  }
  curl_easy_setopt(curl, CURLOPT_URL, auth_url);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request_json);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  /* No Accept-Encoding and no redirects: the bytes we verify are the bytes the shop signed, from the URL we chose. */
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  code = curl_easy_perform(curl);
  if (code == CURLE_WRITE_ERROR) {
    untrusted(out, "answer too large");
    goto done;
  }
  if (code != CURLE_OK) {
    char reason[200];
    snprintf(reason, sizeof reason, "network error: %s", curl_easy_strerror(code));
    untrusted(out, reason);
    goto done;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  /* curl_easy_header (libcurl 7.84+) matches the name case-insensitively; two X-Signature headers are refused. */
  if (curl_easy_header(curl, "X-Signature", 0, CURLH_HEADER, -1, &signature) != CURLHE_OK) signature = NULL;
  if (signature != NULL && signature->amount != 1) {
    untrusted(out, "more than one X-Signature header");
    goto done;
  }
  verdict = licence_verify(status, signature ? signature->value : NULL, body->data, body->len, sent, pinned_key,
                           (long long)time(NULL), out);
done:
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  cJSON_free(request_json);
  cJSON_Delete(request);
  free(body);
  return verdict;
}

/* The product segment of ".../api/<product>/auth", percent-decoded as the shop decodes it; 0 if there is none. */
static int product_from_url(const char *url, char *product, size_t size) {
  const char *path = strstr(url, "://"), *end, *start;
  size_t n = 0;
  if (path == NULL || (path = strchr(path + 3, '/')) == NULL) return 0;
  end = path + strcspn(path, "?#");
  if (end - path >= 1 && end[-1] == '/') end--;
  if (end - path < 5 || memcmp(end - 5, "/auth", 5) != 0) return 0;
  end -= 5;
  for (start = end; start > path && start[-1] != '/'; start--) continue;
  if (start - path < 5 || memcmp(start - 5, "/api/", 5) != 0) return 0;
  for (; start < end; start++) {
    int c = (unsigned char)*start;
    if (c == '%') {
      unsigned char decoded;
      size_t decoded_len = 0;
      if (end - start < 3 || sodium_hex2bin(&decoded, 1, start + 1, 2, NULL, &decoded_len, NULL) != 0 ||
          decoded_len != 1)
        return 0;
      c = decoded;
      start += 2;
    }
    if (c == 0 || n + 1 >= size) return 0;
    product[n++] = (char)c;
  }
  product[n] = '\0';
  return n > 0;
}

int main(int argc, char **argv) {
  unsigned char pinned_key[crypto_sign_PUBLICKEYBYTES];
  size_t pinned_len = 0;
  char product[1024]; /* 64 characters, up to 4 bytes each in UTF-8: room to spare */
  struct request sent;
  struct answer answer;
  enum verdict verdict;

  memset(&answer, 0, sizeof answer);
  if (argc != 5) {
    fprintf(stderr, "usage: %s <auth URL> <key> <uuid> <public key base64>\n", argv[0]);
    return LICENCE_UNTRUSTED;
  }
  if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "untrusted: cannot initialise libsodium or libcurl\n");
    return LICENCE_UNTRUSTED;
  }
  if (sodium_base642bin(pinned_key, sizeof pinned_key, argv[4], strlen(argv[4]), NULL, &pinned_len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      pinned_len != sizeof pinned_key) {
    fprintf(stderr, "usage: the public key must be the base64 of 32 bytes (GET .../api/public-key)\n");
    return LICENCE_UNTRUSTED;
  }
  if ((strncmp(argv[1], "https://", 8) != 0 && strncmp(argv[1], "http://", 7) != 0) ||
      !product_from_url(argv[1], product, sizeof product)) {
    fprintf(stderr, "usage: the auth URL must look like https://HOST/Morpheus%%20Private/api/<product>/auth\n");
    return LICENCE_UNTRUSTED;
  }
  sent.product = product;
  sent.key = argv[2];
  sent.uuid = argv[3];

  verdict = licence_check(argv[1], &sent, pinned_key, &answer);
  if (verdict == LICENCE_VALID)
    printf("days: %d\nhours: %d\nexpires_at: %s\n", answer.days, answer.hours, answer.expires_at);
  else if (verdict == LICENCE_REFUSED)
    printf("refused: %s (HTTP %ld)\n", answer.message, answer.status);
  else
    fprintf(stderr, "untrusted: %s\n", answer.reason);
  curl_global_cleanup();
  return verdict;
}

// The panel's only script besides htmx: "copy" buttons (data-copy="#selector"). The Clipboard API needs HTTPS;
// on plain HTTP (bun run dev) a selection + execCommand fallback does the same.
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const source = document.querySelector(button.getAttribute("data-copy"));
  if (!source) return;
  const text = "value" in source ? source.value : source.textContent;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Скопировано";
    setTimeout(() => {
      button.textContent = label;
    }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallback(source, done));
  } else {
    fallback(source, done);
  }
});

function fallback(source, done) {
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  try {
    if (document.execCommand("copy")) done();
  } catch {
    // The text stays selected: the owner can press Ctrl+C.
  }
}

// A file over the limit is refused in the browser before the upload starts (data-max-bytes on the input): the
// server would refuse it too, but only after the whole upload, and a body over the server's cap gets no page back.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file" || !input.dataset.maxBytes) return;
  const max = Number(input.dataset.maxBytes);
  const file = input.files?.[0];
  input.setCustomValidity(file && file.size > max ? input.dataset.tooBig || "Файл слишком большой" : "");
  input.reportValidity();
});

// On a phone the tab bar scrolls sideways: bring the current tab into view after every page (boosted swaps too).
function centreActiveTab() {
  const tabs = document.querySelector("nav.tabs");
  const active = tabs?.querySelector("a.active");
  if (tabs && active instanceof HTMLElement) {
    tabs.scrollLeft = active.offsetLeft - (tabs.clientWidth - active.offsetWidth) / 2;
  }
}
document.addEventListener("DOMContentLoaded", centreActiveTab);
document.addEventListener("htmx:after:settle", centreActiveTab);
window.addEventListener("resize", centreActiveTab);

// An error shown in the alert bar (templates/layout.tsx) goes away with its × button.
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-dismiss]") : null;
  button?.closest(".notice")?.remove();
});

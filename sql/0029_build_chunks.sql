-- A product's build (the loader zip) lives in the database, so that every app process on every server can deliver
-- it (docs/scaling.md#builds): in chunks of at most 1 MiB, written as the upload arrives and read back one at a time,
-- never held whole in memory. Each process keeps a copy in its own DATA_DIR/builds, fetched from here on a miss.
-- `build` is the build's file name, the last part of products.build_path.
create table build_chunks (
  build text not null,
  seq int not null check (seq >= 0),
  data bytea not null,
  created_at timestamptz not null default now(),
  primary key (build, seq)
);

-- A zip is already compressed: storing it as it is saves PostgreSQL an attempt at compressing every chunk.
alter table build_chunks alter column data set storage external;

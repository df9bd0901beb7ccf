-- The corpus, its files and runs, feedback, and the meta values (as newsdesk made them before migrations).
CREATE TABLE "articles" (
   "id" TEXT PRIMARY KEY,
   "title" TEXT NOT NULL,
   "published" TEXT,
   "url" TEXT,
   "source" TEXT NOT NULL,
   "category" TEXT,
   "content_hash" TEXT NOT NULL,
   "related" TEXT,
   "added_at" TEXT,
   "updated_at" TEXT
);
CREATE INDEX "idx_articles_content_hash" ON "articles" ("content_hash");
CREATE INDEX "idx_articles_published" ON "articles" ("published");
CREATE INDEX "idx_articles_source" ON "articles" ("source");
CREATE TABLE "texts" ("content_hash" TEXT PRIMARY KEY, "body" TEXT);
CREATE TABLE passages (id INTEGER PRIMARY KEY AUTOINCREMENT, text_hash TEXT NOT NULL REFERENCES texts(content_hash),
  ordinal INTEGER NOT NULL, text TEXT NOT NULL);
CREATE UNIQUE INDEX "idx_passages_text_hash_ordinal" ON "passages" ("text_hash", "ordinal");
CREATE TABLE "files" ("path" TEXT PRIMARY KEY, "sha256" TEXT, "size" INTEGER, "article_ids" TEXT, "refusals" TEXT,
  "seen_at" TEXT);
CREATE TABLE ingest_runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT, finished_at TEXT, trigger TEXT,
  corpus_dir TEXT, status TEXT, added INTEGER, changed INTEGER, unchanged INTEGER, removed INTEGER, failed INTEGER,
  failures TEXT, error TEXT, corpus_version INTEGER, seconds REAL);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT, guild_id TEXT, channel_id TEXT,
  user_id TEXT, question TEXT, article_ids TEXT, vote INTEGER);
CREATE TABLE "meta" ("key" TEXT PRIMARY KEY, "value" TEXT);
CREATE VIEW article_passages AS SELECT a.id AS article_id, a.title, a.published, p.ordinal, p.text,
  p.id AS passage_id FROM passages p JOIN articles a ON a.content_hash = p.text_hash;
INSERT INTO meta VALUES ('schema_version', '1'), ('corpus_version', '0'), ('corpus_stamp', lower(hex(randomblob(16))));

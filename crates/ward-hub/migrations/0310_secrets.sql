-- Secrets at rest (crates/ward-hub/src/store/secrets.rs): contacts.secret now holds webhook
-- signing secrets sealed with a key kept outside the database (`enc:v1:<key id>:<base64>`);
-- the store seals plaintext values when it opens. No column changes; this version exists so an
-- older ward refuses this database ("schema version newer than this ward") instead of using a
-- sealed value as the HMAC key.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('contact_secrets', 'sealed:enc:v1');

-- Mutual TLS (docs/sharing.md "Mutual TLS"): an API key may be bound to one client
-- certificate, by the SHA-256 of its DER encoding (lowercase hex). A connection presenting a
-- certificate the hub's client CA signed authenticates as the active key bound to it; one
-- certificate is bound to at most one active key (a revoked key's binding no longer counts).
ALTER TABLE api_keys ADD COLUMN client_cert_sha256 TEXT;
CREATE UNIQUE INDEX api_keys_client_cert ON api_keys (client_cert_sha256) WHERE client_cert_sha256 IS NOT NULL AND revoked_ms IS NULL;

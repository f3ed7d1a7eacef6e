-- Tenant settings for embeds: honour the browser's Do Not Track signal, and the
-- origins whose pages may call the public routes (NULL: CORS_ALLOWED_ORIGINS applies).
ALTER TABLE tenants ADD COLUMN respect_dnt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN allowed_origins TEXT;

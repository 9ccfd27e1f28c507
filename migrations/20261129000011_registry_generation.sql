-- The generation of the registries: every change of registries, their
-- issuers or their publishers (a configuration sync, an admin API change)
-- adds one to it in its own transaction. An instance whose cached copy of
-- the registries is of the stored generation keeps it instead of reading
-- every registry again. A migration that changes those tables' rows adds
-- one too.
CREATE TABLE registry_generation (
    generation  BIGINT NOT NULL
);
INSERT INTO registry_generation (generation) VALUES (0);

-- The version of the registries: every change of registries, their issuers
-- or their publishers (a configuration sync, an admin API change) replaces
-- it with a fresh random value in its own transaction. An instance whose
-- cached copy of the registries is of the stored version keeps it instead
-- of reading every registry again. Random rather than counted, so that a
-- database restored from a backup cannot bring back a value that an
-- instance holds with other registries. A migration that changes those
-- tables' rows replaces it too.
CREATE TABLE registry_version (
    version  BIGINT NOT NULL
);
INSERT INTO registry_version (version) VALUES (0);

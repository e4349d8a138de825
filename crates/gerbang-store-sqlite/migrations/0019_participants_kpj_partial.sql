-- Only participants with a KPJ number (BPJS Ketenagakerjaan) are found by one: about a third of a
-- registry. The unique index on it held an entry for every participant, the rest all NULL; as a
-- partial index it holds only the numbers. Same rule (NULLs never clashed), same name, and lookups
-- (`kpj_digest IN (...)`) use it as before. A first load builds it again by the same definition
-- (`UNIQUE_LOOKUP_INDEXES` in src/lib.rs).
DROP INDEX participants_kpj;
CREATE UNIQUE INDEX participants_kpj ON participants (kpj_digest) WHERE kpj_digest IS NOT NULL;

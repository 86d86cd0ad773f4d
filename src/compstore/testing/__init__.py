"""Test helpers shipped with compstore: conformance suites and a synthetic sky.

``compstore.testing.sky`` makes sky-like exposures and catalogs;
``compstore.testing.blobstore`` holds ``BlobStoreTests``, the conformance suite
every blob-store backend passes (third-party backends subclass it too);
``compstore.testing.registry`` holds ``RegistryTests``, the registry conformance suite
(run on SQLite and PostgreSQL); ``compstore.testing.postgres.PostgresServer`` starts a
throw-away PostgreSQL server on loopback; ``compstore.testing.s3.S3Server`` an
S3-compatible one (moto's, counting requests);
``compstore.testing.repository.copy_repository`` copies a filled repository
(for fixtures that start from a template).
"""

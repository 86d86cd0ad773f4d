"""The error hierarchy is public: pin its tree and its stable codes."""

from __future__ import annotations

import inspect

from compstore import errors

EXPECTED_TREE = {
    "CompstoreError": (Exception,),
    "RepositoryError": ("CompstoreError",),
    "RepositoryNotFoundError": ("RepositoryError", FileNotFoundError),
    "RepositoryExistsError": ("RepositoryError", FileExistsError),
    "RepositoryFormatError": ("RepositoryError",),
    "ReadOnlyRepositoryError": ("RepositoryError", PermissionError),
    "RegistryError": ("RepositoryError",),
    "DatasetTypeError": ("CompstoreError",),
    "MissingDatasetTypeError": ("DatasetTypeError", KeyError),
    "DatasetTypeConflictError": ("DatasetTypeError",),
    "InvalidNameError": ("DatasetTypeError", ValueError),
    "DefinitionError": ("DatasetTypeError", ValueError),
    "DataIdError": ("CompstoreError", ValueError),
    "DatasetNotFoundError": ("CompstoreError", LookupError),
    "AmbiguousDatasetError": ("CompstoreError", LookupError),
    "ConflictingDatasetError": ("CompstoreError",),
    "DatasetInUseError": ("CompstoreError",),
    "CollectionError": ("CompstoreError",),
    "MissingCollectionError": ("CollectionError", KeyError),
    "CollectionTypeError": ("CollectionError", TypeError),
    "StorageClassError": ("CompstoreError",),
    "UnknownStorageClassError": ("StorageClassError", KeyError),
    "StorageClassTypeError": ("StorageClassError", TypeError),
    "UnknownComponentError": ("StorageClassError", KeyError),
    "InvalidParameterError": ("StorageClassError", ValueError),
    "QueryError": ("CompstoreError", ValueError),
    "QuerySyntaxError": ("QueryError",),
    "BlobStoreError": ("CompstoreError",),
    "BlobNotFoundError": ("BlobStoreError", KeyError),
    "CorruptBlobError": ("BlobStoreError",),
    "InvalidDigestError": ("BlobStoreError", ValueError),
    "InvalidRegionError": ("BlobStoreError", ValueError),
    "EncodingError": ("CompstoreError", ValueError),
    "CombineError": ("CompstoreError", ValueError),
    "ObjectError": ("CompstoreError", ValueError),
    "FitsFormatError": ("ObjectError",),
    "AstropyConversionError": ("ObjectError",),
    "ReplaceKeyError": ("ObjectError", TypeError),
    "PipelineError": ("CompstoreError",),
    "TaskError": ("PipelineError",),
    "PipelineDefinitionError": ("PipelineError", ValueError),
}


def test_tree_is_pinned():
    classes = {
        name: cls
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == errors.__name__
    }
    assert set(classes) == set(EXPECTED_TREE) == set(errors.__all__)
    for name, bases in EXPECTED_TREE.items():
        expected = tuple(getattr(errors, b) if isinstance(b, str) else b for b in bases)
        assert classes[name].__bases__ == expected, name


EXPECTED_CODES = {
    "CompstoreError": "compstore",
    "RepositoryError": "repository",
    "RepositoryNotFoundError": "repository-not-found",
    "RepositoryExistsError": "repository-exists",
    "RepositoryFormatError": "repository-format",
    "ReadOnlyRepositoryError": "repository-read-only",
    "RegistryError": "registry",
    "DatasetTypeError": "dataset-type",
    "MissingDatasetTypeError": "dataset-type-missing",
    "DatasetTypeConflictError": "dataset-type-conflict",
    "InvalidNameError": "invalid-name",
    "DefinitionError": "definition",
    "DataIdError": "data-id",
    "DatasetNotFoundError": "dataset-not-found",
    "AmbiguousDatasetError": "dataset-ambiguous",
    "ConflictingDatasetError": "dataset-conflict",
    "DatasetInUseError": "dataset-in-use",
    "CollectionError": "collection",
    "MissingCollectionError": "collection-missing",
    "CollectionTypeError": "collection-type",
    "StorageClassError": "storage-class",
    "UnknownStorageClassError": "storage-class-unknown",
    "StorageClassTypeError": "storage-class-type",
    "UnknownComponentError": "component-unknown",
    "InvalidParameterError": "parameter-invalid",
    "QueryError": "query",
    "QuerySyntaxError": "query-syntax",
    "BlobStoreError": "blob-store",
    "BlobNotFoundError": "blob-not-found",
    "CorruptBlobError": "blob-corrupt",
    "InvalidDigestError": "digest-invalid",
    "InvalidRegionError": "region-invalid",
    "EncodingError": "encoding",
    "CombineError": "combine",
    "ObjectError": "object",
    "FitsFormatError": "fits-format",
    "AstropyConversionError": "astropy-conversion",
    "ReplaceKeyError": "object-replace-key",
    "PipelineError": "pipeline",
    "TaskError": "task",
    "PipelineDefinitionError": "pipeline-definition",
}


def test_codes_are_unique_and_stable():
    codes = {name: getattr(errors, name).code for name in EXPECTED_TREE}
    assert codes == EXPECTED_CODES  # released codes never change
    assert len(set(codes.values())) == len(codes)


def test_messages_are_not_quoted_like_keyerror():
    err = errors.MissingDatasetTypeError("no dataset type 'x'")
    assert str(err) == "no dataset type 'x'"
    assert isinstance(err, KeyError)


def test_query_syntax_error_carries_column():
    err = errors.QuerySyntaxError("bad", expression="visit = = 1", column=9)
    assert err.column == 9 and err.expression == "visit = = 1"

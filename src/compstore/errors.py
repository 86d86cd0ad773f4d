"""The one exception hierarchy of compstore.

Every error compstore raises on purpose is a :class:`CompstoreError`. Where an
error is also naturally a builtin (a missing key, a bad value, a wrong type) it
inherits that builtin too, so ``except KeyError`` keeps working::

    CompstoreError
    ├── RepositoryError
    │   ├── RepositoryNotFoundError (FileNotFoundError)
    │   ├── RepositoryExistsError (FileExistsError)
    │   ├── RepositoryFormatError
    │   ├── ReadOnlyRepositoryError (PermissionError)
    │   └── RegistryError
    ├── DatasetTypeError
    │   ├── MissingDatasetTypeError (KeyError)
    │   ├── DatasetTypeConflictError
    │   ├── InvalidNameError (ValueError)
    │   └── DefinitionError (ValueError)
    ├── DataIdError (ValueError)
    ├── DatasetNotFoundError (LookupError)
    ├── AmbiguousDatasetError (LookupError)
    ├── ConflictingDatasetError
    ├── DatasetInUseError
    ├── CollectionError
    │   ├── MissingCollectionError (KeyError)
    │   └── CollectionTypeError (TypeError)
    ├── StorageClassError
    │   ├── UnknownStorageClassError (KeyError)
    │   ├── StorageClassTypeError (TypeError)
    │   ├── UnknownComponentError (KeyError)
    │   └── InvalidParameterError (ValueError)
    ├── QueryError (ValueError)
    │   └── QuerySyntaxError
    ├── BlobStoreError
    │   ├── BlobNotFoundError (KeyError)
    │   ├── CorruptBlobError
    │   ├── InvalidDigestError (ValueError)
    │   └── InvalidRegionError (ValueError)
    ├── EncodingError (ValueError)
    ├── CombineError (ValueError)
    ├── ObjectError (ValueError)
    │   ├── FitsFormatError
    │   ├── AstropyConversionError
    │   └── ReplaceKeyError (TypeError)
    └── PipelineError
        ├── TaskError
        └── PipelineDefinitionError (ValueError)

Each class has a stable ``code`` (a short string that never changes once
released) so that tools can match errors without parsing messages;
``tests/test_errors.py`` pins the tree and the codes.

Messages say what was wrong, with which key or digest, and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AmbiguousDatasetError",
    "AstropyConversionError",
    "BlobNotFoundError",
    "BlobStoreError",
    "CollectionError",
    "CollectionTypeError",
    "CombineError",
    "CompstoreError",
    "ConflictingDatasetError",
    "CorruptBlobError",
    "DataIdError",
    "DatasetNotFoundError",
    "DatasetTypeConflictError",
    "DatasetInUseError",
    "DatasetTypeError",
    "DefinitionError",
    "EncodingError",
    "FitsFormatError",
    "InvalidDigestError",
    "InvalidNameError",
    "InvalidParameterError",
    "InvalidRegionError",
    "MissingCollectionError",
    "MissingDatasetTypeError",
    "ObjectError",
    "PipelineDefinitionError",
    "PipelineError",
    "QueryError",
    "QuerySyntaxError",
    "ReadOnlyRepositoryError",
    "RegistryError",
    "ReplaceKeyError",
    "RepositoryError",
    "RepositoryExistsError",
    "RepositoryFormatError",
    "RepositoryNotFoundError",
    "StorageClassError",
    "StorageClassTypeError",
    "TaskError",
    "UnknownComponentError",
    "UnknownStorageClassError",
]


class CompstoreError(Exception):
    """Base class of every error compstore raises on purpose."""

    code = "compstore"

    def __str__(self) -> str:
        # KeyError quotes its argument; our messages are sentences, never quoted.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


# -- repositories -------------------------------------------------------------
class RepositoryError(CompstoreError):
    """A repository folder is missing, already exists, or cannot be used."""

    code = "repository"


class RepositoryNotFoundError(RepositoryError, FileNotFoundError):
    """No compstore repository at the given path."""

    code = "repository-not-found"


class RepositoryExistsError(RepositoryError, FileExistsError):
    """``create`` was asked for a folder that already holds a repository."""

    code = "repository-exists"


class RepositoryFormatError(RepositoryError):
    """The repository's format version is unknown, or its config or registry file is damaged."""

    code = "repository-format"


class ReadOnlyRepositoryError(RepositoryError, PermissionError):
    """A write was attempted on a repository opened read-only."""

    code = "repository-read-only"


class RegistryError(RepositoryError):
    """The registry's database could not do what was asked: e.g. the connection to it was lost."""

    code = "registry"


# -- dataset types ------------------------------------------------------------
class DatasetTypeError(CompstoreError):
    """A dataset type is unknown, conflicting or badly named."""

    code = "dataset-type"


class MissingDatasetTypeError(DatasetTypeError, KeyError):
    """The dataset type is not registered in this repository."""

    code = "dataset-type-missing"


class DatasetTypeConflictError(DatasetTypeError):
    """A dataset type is registered already with other dimensions or storage class."""

    code = "dataset-type-conflict"


class InvalidNameError(DatasetTypeError, ValueError):
    """A dataset type, dimension, component or collection name is not allowed."""

    code = "invalid-name"


class DefinitionError(DatasetTypeError, ValueError):
    """A defined dataset type (aggregate, join) is declared or used wrongly.

    Unknown members, dimensions a member lacks, a storage class with no way to
    combine, or a put into a defined type (put its members instead).
    """

    code = "definition"


# -- data IDs and datasets ----------------------------------------------------
class DataIdError(CompstoreError, ValueError):
    """A data ID lacks a dimension, has an extra one, or has a bad value."""

    code = "data-id"


class DatasetNotFoundError(CompstoreError, LookupError):
    """No dataset matches the dataset type and data ID in the searched collections."""

    code = "dataset-not-found"


class AmbiguousDatasetError(CompstoreError, LookupError):
    """A partial data ID matches more than one dataset."""

    code = "dataset-ambiguous"


class ConflictingDatasetError(CompstoreError):
    """A dataset of this type and data ID exists already in the RUN collection."""

    code = "dataset-conflict"


class DatasetInUseError(CompstoreError):
    """A dataset cannot be removed: other datasets refer to its components (a coadd's inputs).

    ``referrers`` holds the refs of the datasets that refer to it.
    """

    code = "dataset-in-use"

    def __init__(self, message: str, referrers: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.referrers = tuple(referrers)


# -- collections --------------------------------------------------------------
class CollectionError(CompstoreError):
    """A collection is unknown or used in a way its type does not allow."""

    code = "collection"


class MissingCollectionError(CollectionError, KeyError):
    """The collection does not exist in this repository."""

    code = "collection-missing"


class CollectionTypeError(CollectionError, TypeError):
    """The collection has the wrong type for the operation (e.g. put into a CHAINED)."""

    code = "collection-type"


# -- storage classes ----------------------------------------------------------
class StorageClassError(CompstoreError):
    """A storage class is unknown or cannot handle the object or request."""

    code = "storage-class"


class UnknownStorageClassError(StorageClassError, KeyError):
    """No storage class of this name is registered (built in or by entry point)."""

    code = "storage-class-unknown"


class StorageClassTypeError(StorageClassError, TypeError):
    """The object's Python type does not match the dataset type's storage class."""

    code = "storage-class-type"


class UnknownComponentError(StorageClassError, KeyError):
    """The storage class has no component of this name."""

    code = "component-unknown"


class InvalidParameterError(StorageClassError, ValueError):
    """A read parameter is unknown to the storage class or has a bad value."""

    code = "parameter-invalid"


# -- queries ------------------------------------------------------------------
class QueryError(CompstoreError, ValueError):
    """A query names an unknown dimension or cannot be run."""

    code = "query"


class QuerySyntaxError(QueryError):
    """A ``where`` expression is malformed; ``column`` is where it went wrong (1-based)."""

    code = "query-syntax"

    def __init__(self, message: str, *, expression: str = "", column: int = 0) -> None:
        super().__init__(message)
        self.expression = expression
        self.column = column


# -- the blob store -----------------------------------------------------------
class BlobStoreError(CompstoreError):
    """The blob store cannot read or write a component."""

    code = "blob-store"


class BlobNotFoundError(BlobStoreError, KeyError):
    """No component with this digest in the blob store."""

    code = "blob-not-found"


class CorruptBlobError(BlobStoreError):
    """A stored component does not match its digest or cannot be decoded."""

    code = "blob-corrupt"


class InvalidDigestError(BlobStoreError, ValueError):
    """A digest string is not 32 lowercase hexadecimal characters."""

    code = "digest-invalid"


class InvalidRegionError(BlobStoreError, ValueError):
    """A region is not a tuple of at most ``ndim`` slices."""

    code = "region-invalid"


class EncodingError(CompstoreError, ValueError):
    """A value has no canonical encoding (e.g. an object-dtype array, a NaN key)."""

    code = "encoding"


# -- objects ------------------------------------------------------------------
class CombineError(CompstoreError, ValueError):
    """The members of a defined dataset type do not combine.

    Metadata they must share differs, or the rows of a join do not align; the
    message names the members.
    """

    code = "combine"


class ObjectError(CompstoreError, ValueError):
    """An astronomical object was given inconsistent or invalid values."""

    code = "object"


class FitsFormatError(ObjectError):
    """A FITS file cannot be read as the requested object."""

    code = "fits-format"


class AstropyConversionError(ObjectError):
    """An astropy object (CCDData, WCS, HDUList) has a part compstore cannot keep exactly."""

    code = "astropy-conversion"


class ReplaceKeyError(ObjectError, TypeError):
    """``Exposure.replace`` got a keyword that is not a component (also a TypeError)."""

    code = "object-replace-key"


# -- pipelines ----------------------------------------------------------------
class PipelineError(CompstoreError):
    """A pipeline cannot be built or run."""

    code = "pipeline"


class TaskError(PipelineError):
    """A task failed on a unit of work; ``data_id`` says which."""

    code = "task"


class PipelineDefinitionError(PipelineError, ValueError):
    """A pipeline file or override is malformed."""

    code = "pipeline-definition"

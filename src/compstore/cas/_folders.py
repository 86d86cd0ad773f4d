"""Loose components of a local blob store: one zarr folder per array, one file per document.

The fan-out folders (``arrays/ab/``, a zarr group each, and ``documents/ab/``),
writing an array as its own folder, and naming a written folder or file by
its digest: at once (fsync off) or at `LocalBlobStore.sync` (staged; see
`compstore.cas._local`).
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from compstore.cas._atomic import fsync_dir, write_atomic
from compstore.cas._digest import is_digest
from compstore.cas._localbase import LocalBase
from compstore.cas._zarrfmt import group_metadata
from compstore.cas._zarrio import dimension_names_for
from compstore.cas._zarrwrite import write_array_dir
from compstore.errors import BlobStoreError

__all__ = ["FolderStore"]


class FolderStore(LocalBase):
    """Writing loose components: arrays as folders, documents as files (a part of `LocalBlobStore`)."""

    def _init_layout(self, packs: bool) -> None:
        created: list[str] = []
        folders = [self._root, self._arrays_dir, self._documents_dir, self._staging_dir]
        for path in folders[1:] + [self._packs_dir]:
            if os.path.islink(path):
                # Writers create folders and files below these: through a link they
                # would land outside the repository.
                raise BlobStoreError(
                    f"{path} is a symbolic link; the blob store's folders must be real "
                    "folders inside it (a damaged or tampered repository): replace the "
                    "link by the folder it should be, or restore the repository"
                )
        for path in folders + ([self._packs_dir] if packs else []):
            if not os.path.isdir(path):
                os.makedirs(path, exist_ok=True)
                created.append(path)
        group = os.path.join(self._arrays_dir, "zarr.json")
        if not os.path.exists(group):
            write_atomic(group, group_metadata(), fsync=self._fsync)
            created.append(group)
        if created and self._fsync:
            for path in created:
                fsync_dir(os.path.dirname(path))

    def make_fanout(self) -> None:
        """Create the 256 fan-out folders of ``arrays/`` (zarr groups) and of ``documents/`` now.

        A store creates them as components land in them, which costs a put
        into a young store a ``mkdir`` and a group ``zarr.json`` for most new
        components (in a store of a few thousand components they all exist).
        `compstore.Butler.create` calls this (tens of milliseconds, more with fsync).

        Raises
        ------
        BlobStoreError
            If a folder cannot be created.
        """
        if self.read_only:
            raise BlobStoreError(f"cannot create the fan-out folders of {self._root}: it is read-only")
        try:
            with self._lock:
                for prefix in (f"{i:02x}" for i in range(256)):
                    self._ensure_dir(f"{self._arrays_dir}/{prefix}", group=True)
                    self._ensure_dir(f"{self._documents_dir}/{prefix}", group=False)
        except OSError as exc:
            raise BlobStoreError(
                f"cannot create the fan-out folders of {self._root}: {exc}"
            ) from exc
        self.sync()

    def _ensure_dir(self, path: str, *, group: bool) -> None:
        """Create a fan-out folder (a zarr group when ``group``) if it is missing."""
        if path in self._known_dirs:
            return
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            self._dirty_dirs.add(os.path.dirname(path))
        meta = os.path.join(path, "zarr.json")
        if group and not os.path.exists(meta):
            # Concurrent writers replace one complete, identical file with another.
            write_atomic(meta, group_metadata(), fsync=self._fsync)
            self._dirty_dirs.add(path)
        self._known_dirs.add(path)

    def _write_folder(self, array: np.ndarray, digest: str) -> bool:
        """Write ``array`` (of ``digest``) as its own folder; False if another writer was first."""
        with self._new_folder(digest, f"array component {digest}") as tmp:
            files = write_array_dir(tmp, array, dimension_names_for(digest, array.ndim))
        return self._commit_array(digest, tmp, files)

    def _commit_array(self, digest: str, tmp: str, files: list[str]) -> bool:
        """Name the written folder ``tmp`` ``digest``: now, or staged for `sync` (fsync on).

        Returns False, and removes ``tmp``, if the same array was stored or
        staged meanwhile (by another thread or process).
        """
        with self._lock:
            if not self._fsync:
                return self._publish_array(digest, tmp)
            if digest in self._staged_arrays:
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            self._staged_arrays[digest] = (tmp, files)
        return True

    def _publish_array(self, digest: str, src: str) -> bool:
        """Rename ``src`` to the array's place; False if it was there already (``src`` removed)."""
        final = self._array_path(digest)
        self._ensure_dir(os.path.dirname(final), group=True)
        try:
            os.rename(src, final)
        except OSError:
            if not os.path.isdir(final):
                raise
            # Stored meanwhile (another process, same content): keep theirs.
            shutil.rmtree(src, ignore_errors=True)
            return False
        self._dirty_dirs.add(os.path.dirname(final))
        return True

    def _publish_document(self, digest: str, src: str) -> None:
        final = self._document_path(digest)
        self._ensure_dir(os.path.dirname(final), group=False)
        if os.path.exists(final):
            os.unlink(src)  # written once: keep the one already there
            return
        os.replace(src, final)
        self._dirty_dirs.add(os.path.dirname(final))

    def _iter_fanout(self, top: str, suffix: str, want_dir: bool) -> set[str]:
        found: set[str] = set()
        try:
            groups = [e for e in os.scandir(top) if len(e.name) == 2 and e.is_dir()]
            for group in groups:
                for entry in os.scandir(group.path):
                    name = entry.name[: len(entry.name) - len(suffix)] if suffix else entry.name
                    if (
                        entry.name.endswith(suffix)
                        and is_digest(name)
                        and name.startswith(group.name)
                        and entry.is_dir() == want_dir
                    ):
                        found.add(name)
        except FileNotFoundError:
            if os.path.isdir(top):
                raise BlobStoreError(
                    f"a folder under {top} vanished while being listed; list again"
                ) from None
            return found
        except OSError as exc:
            raise BlobStoreError(f"cannot list the components under {top}: {exc}") from exc
        return found

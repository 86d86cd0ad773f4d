"""Digest algorithms that collide on purpose: for testing what a store does on a digest hit.

A content-addressed store trusts that equal digests mean equal bytes; a
format 3 repository compares bytes on a hit (``compare_on_hit``) so that a
colliding writer is refused, never served another's component. These
algorithms make every put collide, so that a test can check that refusal
(and that a trusting store would have shared the component) with any
`compstore.cas.BlobStore`::

    from compstore.testing.digests import COLLIDING, colliding_per_kind

    store = LocalBlobStore(root, digest_algorithm=COLLIDING, compare_on_hit=True)

Never for a repository: every component would have one name.
"""

from __future__ import annotations

import hashlib

from compstore.cas import DigestAlgorithm

__all__ = ["COLLIDING", "colliding_per_kind"]


class _Constant:
    """A hasher whose digest ignores what it is fed (with ``per_kind``, not its tag)."""

    def __init__(self, tag: bytes, per_kind: bool) -> None:
        self._digest = hashlib.md5(tag).hexdigest() if per_kind else "ab" * 16

    def update(self, data: object) -> None:
        del data

    def hexdigest(self) -> str:
        return self._digest


#: Every component (array or document, whatever its content) gets one digest.
COLLIDING = DigestAlgorithm("const", lambda tag: _Constant(tag, False))


def colliding_per_kind() -> DigestAlgorithm:
    """An algorithm under which every component of one kind (array, document...) collides.

    The digest depends on the kind's tag only, so an array and a document
    never share a name (a store that keeps kinds apart sees a hit of its own
    kind).
    """
    return DigestAlgorithm("const", lambda tag: _Constant(tag, True))

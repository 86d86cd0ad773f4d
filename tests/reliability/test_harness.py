"""The reliability harness itself: scale and counts reach the session summary."""

from __future__ import annotations


def test_scale_is_at_least_one(reliability_scale, reliability_counts):
    assert reliability_scale >= 1
    reliability_counts("harness", scale=reliability_scale)

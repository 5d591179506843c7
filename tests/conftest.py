"""Hypothesis profiles, chosen with the environment variable HYPOTHESIS_PROFILE:

- `ci` (the default): bounded example counts, no deadline (the first call of a derivative
  compiles it), derandomized so that every run tests the same examples, no example
  database (nothing written next to the sources, nothing replayed from older runs);
- `nightly`: many more examples, random (a different sample each night; failures are
  saved in the example database and replayed first until fixed);
- `dev`: a handful of examples, for a quick run while editing.

Tests in tests/test_properties.py scale their example counts from the profile's
`max_examples` (see `examples()` there).
"""
import os

from hypothesis import HealthCheck, settings

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
         HealthCheck.large_base_example]

settings.register_profile("ci", max_examples=15, deadline=None, derandomize=True, database=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("nightly", max_examples=300, deadline=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("dev", max_examples=3, deadline=None, derandomize=True,
                          database=None, suppress_health_check=_SLOW, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

"""Names of the test-set degradation protocols (kept apart so the CLI can list them cheaply)."""

PROTOCOLS = ("difface-celeba-test",)

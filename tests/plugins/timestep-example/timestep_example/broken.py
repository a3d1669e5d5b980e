"""An entry point that fails to import when TIMESTEP_EXAMPLE_BROKEN=1, as a broken plugin would."""

import os

if os.environ.get("TIMESTEP_EXAMPLE_BROKEN") == "1":
    import timestep_example_missing_dependency  # noqa: F401

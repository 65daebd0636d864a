"""The official B2MML V0600 XSDs, for the tests that check documents against them.

Plain cached functions, not fixtures: a missing XSD set makes the tests that need it
FAIL (a fixture would only report a setup error), and each schema is read once.
"""

import functools
import os
from pathlib import Path

import pytest
from lxml import etree

REPO = Path(__file__).resolve().parent.parent


def xsd_dir():
    """The V0600 folder: $MES_B2MML_XSD_DIR, <repo>/../shared/b2mml/V0600, /work/shared/..."""
    configured = os.environ.get("MES_B2MML_XSD_DIR")
    if configured:
        if not Path(configured).is_dir():
            pytest.fail(f"MES_B2MML_XSD_DIR={configured!r} is not a folder of B2MML V0600 XSDs")
        return Path(configured)
    candidates = [REPO.parent / "shared" / "b2mml" / "V0600", Path("/work/shared/b2mml/V0600")]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    pytest.fail(
        "The B2MML V0600 XSD set is missing: set MES_B2MML_XSD_DIR to its folder "
        f"(looked in {', '.join(str(c) for c in candidates)}). Without it the generated "
        "documents cannot be checked."
    )


@functools.cache
def load_xsd(name):
    """The schema of one XSD file of the set (``B2MML-V0600-Material.xsd``)."""
    path = xsd_dir() / name
    if not path.is_file():
        pytest.fail(f"{path} is missing from the B2MML V0600 XSD set")
    # The XSDs include each other by relative path: parse from the file itself.
    return etree.XMLSchema(etree.parse(str(path)))

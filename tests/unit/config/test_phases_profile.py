"""``--profile ENV`` of a file of phases: the file's own environment, and each app dir that
defines ENV, loaded with it; a profile nobody defines is one line naming the known ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbkube.config.loader import config_cluster
from sbkube.config.phases import load_group, read_phases
from sbkube.errors import ConfigError

PHASES = """\
apiVersion: sbkube/v1
settings:
  namespace: plat
  kubeconfig: {kubeconfig}
  kubeconfig_context: lab
phases:
  one: {{source: one}}
  two: {{source: two, depends_on: [one]}}
"""

ONE = """\
namespace: one
apps:
  cm: {type: yaml, manifests: [cm.yaml]}
environments:
  prod:
    namespace: one-prod
"""

TWO = """\
namespace: two
apps:
  cm2: {type: yaml, manifests: [cm.yaml]}
"""


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    root = tmp_path / "platform"
    for name, text in (("one", ONE), ("two", TWO)):
        (root / name).mkdir(parents=True)
        (root / name / "config.yaml").write_text(text)
        (root / name / "cm.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"
        )
    (root / "sbkube.yaml").write_text(PHASES.format(kubeconfig=tmp_path / "kc"))
    return root


def test_each_app_dir_that_defines_the_profile_is_loaded_with_it(platform: Path) -> None:
    plain = read_phases(platform)
    prod = read_phases(platform, None, "prod")
    assert plain is not None and prod is not None
    assert plain.profile is None and prod.profile == "prod"
    one, two = (prod.phases[name].groups[0] for name in ("one", "two"))
    assert (one.profile, two.profile) == ("prod", None)
    assert load_group(one, prod).config.namespace == "one-prod"
    assert load_group(two, prod).config.namespace == "two"
    assert load_group(plain.phases["one"].groups[0], plain).config.namespace == "one"


def test_a_profile_nobody_defines_names_the_known_ones(platform: Path) -> None:
    with pytest.raises(ConfigError, match=r"sbkube.yaml: --profile nope: no such profile "
                                          r"\(known: prod\)"):  # fmt: skip
        read_phases(platform, None, "nope")


def test_the_files_own_environment_is_merged_over_it(platform: Path) -> None:
    text = (platform / "sbkube.yaml").read_text()
    (platform / "sbkube.yaml").write_text(
        text + "environments:\n  staging:\n    phases:\n      two: {enabled: false}\n"
    )
    staging = read_phases(platform, None, "staging")
    assert staging is not None and staging.order == ("one",)
    both = read_phases(platform)
    assert both is not None and both.order == ("one", "two")


def test_the_files_cluster_settings_hold_under_a_profile_only_its_dirs_define(
    platform: Path, tmp_path: Path
) -> None:
    assert config_cluster(platform, None, None) == (str(tmp_path / "kc"), "lab")
    assert config_cluster(platform, None, "prod") == (str(tmp_path / "kc"), "lab")

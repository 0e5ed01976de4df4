"""The one build step pyproject.toml cannot declare: the wheel carries the access policy.

``policies/`` stays at the top of the repository, where the docs point and operators edit it. A
built wheel (``pip install .``, ``pip wheel .``) carries a copy of it as the package data
``hub/policies/``, where ``hub.access.policy.default_policy_dir()`` finds it once installed. An
editable install copies nothing: the checkout's ``policies/`` is read in place. (MANIFEST.in
puts ``policies/`` in the sdist, so a wheel built from the sdist carries it too.)
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

POLICIES = Path(__file__).resolve().parent / "policies"


class BuildWithPolicies(build_py):
    """build_py, then ``policies/*`` into the built ``hub/policies/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib, "hub", "policies")
        self.mkpath(str(target))
        for source in self._policy_files():
            self.copy_file(str(source), str(target / source.name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            target = Path(self.build_lib, "hub", "policies")
            outputs += [str(target / source.name) for source in self._policy_files()]
        return outputs

    @staticmethod
    def _policy_files() -> list[Path]:
        if not POLICIES.is_dir():
            raise FileNotFoundError(f"{POLICIES}: the access policy the wheel must carry")
        return sorted(p for p in POLICIES.iterdir() if p.is_file() and not p.name.startswith("."))


setup(cmdclass={"build_py": BuildWithPolicies})

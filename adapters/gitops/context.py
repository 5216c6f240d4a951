"""What a renderer needs besides the cluster: where the repository is and how it is reached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RenderContext"]


@dataclass(frozen=True)
class RenderContext:
    """Shared inputs of the four renderers.

    Attributes:
        repo_dir: the local clone (renderers read existing foreign files from it).
        repo_url: URL controllers clone (credentials already stripped).
        branch: branch controllers follow.
    """

    repo_dir: Path
    repo_url: str
    branch: str

    def cluster_dir(self, cluster: str) -> Path:
        return self.repo_dir / "clusters" / cluster

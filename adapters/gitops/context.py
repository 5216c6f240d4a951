"""What a renderer needs besides the cluster: where the repository is and how it is reached."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import has_credentials, is_ssh

__all__ = ["DEFAULT_SECRET", "RenderContext", "secret_for"]

#: The Secret the generated objects name when the remote needs credentials (docs/gitops.md).
DEFAULT_SECRET = "berth-git-credentials"


@dataclass(frozen=True)
class RenderContext:
    """Shared inputs of the four renderers.

    Attributes:
        repo_dir: the local clone (renderers read existing foreign files from it).
        repo_url: URL controllers clone (credentials already stripped).
        branch: branch controllers follow.
        secret: name of the Secret holding the repository's credentials, which the
            objects reference (``None``: a public repository, no reference).
    """

    repo_dir: Path
    repo_url: str
    branch: str
    secret: str | None = None

    @property
    def ssh(self) -> bool:
        return is_ssh(self.repo_url)

    def cluster_dir(self, cluster: str) -> Path:
        return self.repo_dir / "clusters" / cluster


def secret_for(raw_url: str, configured: str | None) -> str | None:
    """The Secret to reference: the configured one, else :data:`DEFAULT_SECRET` when the remote
    URL carried credentials or is an SSH URL (which always needs a key), else none."""
    if configured:
        return configured
    return DEFAULT_SECRET if has_credentials(raw_url) or is_ssh(raw_url) else None

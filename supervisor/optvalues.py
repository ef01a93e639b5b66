"""Option values read as attributes, one per row of an option table (``options.Option``).

``config.RunConfig`` (the rows of ``options.RUN``) and the dry run's ``Options`` (the rows of
``options.DRYRUN``) both keep their values in ``self.values`` (dest -> value) and are read as
``cfg.kill_grace``; :class:`ByRow` is that reading, once. It imports nothing at module level, so
the run command's start-up pays for nothing new.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .options import Option


class ByRow:
    """Read ``self.values[name]`` as ``self.name``; a row of :meth:`rows` that has no value reads
    as the row's empty value (its default, else () for a repeatable one); any other name is an
    AttributeError naming the class."""

    __slots__ = ()

    @classmethod
    def rows(cls) -> Mapping[str, Option]:
        """The option table, by dest."""
        raise NotImplementedError

    def __getattr__(self, name: str) -> Any:  # only called for names that are not attributes
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        row = type(self).rows().get(name)
        if row is not None:
            return row.empty
        raise AttributeError(f"{type(self).__name__} has no option or field {name!r}")

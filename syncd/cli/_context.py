"""What every command needs, loaded on first use: settings, logging, the store engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from syncd.config import Settings, load_settings
from syncd.logs import configure_logging
from syncd.redact import REDACTOR
from syncd.store import open_store


@dataclass
class AppContext:
    config_path: str
    _settings: Settings | None = None
    _engine: Engine | None = None
    _closers: list[object] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(Path(self.config_path))
            REDACTOR.add(*settings.secrets)
            configure_logging(settings.logging.level, settings.logging.format)
            self._settings = settings
        return self._settings

    def use_settings(self, settings: Settings) -> None:
        """Adopt settings built in memory (the demo) instead of reading the config file."""
        REDACTOR.add(*settings.secrets)
        configure_logging(settings.logging.level, settings.logging.format)
        self._settings = settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = open_store(self.settings.store.url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

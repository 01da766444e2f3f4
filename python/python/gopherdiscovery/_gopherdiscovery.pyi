"""The Rust half of gopherdiscovery (pyo3). Checked against the compiled module
with ``python -m mypy.stubtest gopherdiscovery._gopherdiscovery``."""

import builtins
from collections.abc import Mapping, Sequence
from typing import Final, Literal, Optional, final

__all__ = [
    "Error",
    "InvalidUrlError",
    "AddressInUseError",
    "InvalidOptionError",
    "InvalidMemberError",
    "TimeoutError",
    "ClosedError",
    "ProtocolError",
    "TransportError",
    "IoError",
    "Server",
    "ServerUrls",
    "ServerStatus",
    "Member",
    "Event",
    "Update",
    "Cursor",
    "SubscriberCore",
    "ClientCore",
    "__version__",
    "WIRE_VERSION",
    "nng_version",
    "DEFAULT_SURVEY_URL",
    "DEFAULT_PUBLISH_URL",
    "DEFAULT_SNAPSHOT_URL",
    "STEP_SECONDS",
    "MAX_EVENTS",
]

__version__: Final[str]
WIRE_VERSION: Final[int]

def nng_version() -> str:
    """The version of the NNG library linked in, e.g. ``"1.11.0"``."""

DEFAULT_SURVEY_URL: Final[str]
DEFAULT_PUBLISH_URL: Final[str]
DEFAULT_SNAPSHOT_URL: Final[str]
STEP_SECONDS: Final[float]
MAX_EVENTS: Final[int]

# Exceptions: one base class; each subclass also derives from the built-in that
# fits, so `except ValueError` / `except OSError` catch what users expect.

class Error(Exception):
    """Base class of every gopherdiscovery error."""

    code: Optional[int]

class InvalidUrlError(Error, OSError, ValueError):
    url: str

class AddressInUseError(Error, OSError):
    url: str

class InvalidOptionError(Error, ValueError):
    option: str

class InvalidMemberError(Error, ValueError): ...
class TimeoutError(Error, builtins.TimeoutError): ...
class ClosedError(Error): ...
class ProtocolError(Error): ...
class TransportError(Error, OSError): ...
class IoError(Error, OSError): ...

_Metadata = Mapping[str, str]

@final
class Member:
    """One live service: name, metadata, incarnation."""

    def __new__(cls, name: str, metadata: Optional[_Metadata] = None, incarnation: int = 0) -> Member: ...
    @property
    def name(self) -> str: ...
    @property
    def metadata(self) -> dict[str, str]: ...
    @property
    def incarnation(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Event:
    """One change: kind, member, reason."""

    @property
    def kind(self) -> Literal["joined", "left", "updated"]: ...
    @property
    def member(self) -> Member: ...
    @property
    def reason(self) -> Optional[Literal["closed", "timeout", "restarted"]]: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ServerUrls:
    """The URLs a server listens on, as bound."""

    @property
    def survey(self) -> str: ...
    @property
    def publish(self) -> str: ...
    @property
    def snapshot(self) -> str: ...
    @property
    def legacy_publish(self) -> Optional[str]: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class ServerStatus:
    """One configured server as a subscriber sees it."""

    @property
    def publish(self) -> str: ...
    @property
    def snapshot(self) -> Optional[str]: ...
    @property
    def epoch(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def state(self) -> Literal["syncing", "live", "stale"]: ...
    @property
    def warming(self) -> bool: ...
    @property
    def members(self) -> int: ...
    @property
    def last_publication_age(self) -> Optional[float]: ...
    @property
    def resyncs(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class Server:
    """A discovery server. Times in seconds."""

    def __new__(
        cls,
        survey: str = ...,
        publish: str = ...,
        snapshot: str = ...,
        legacy_publish: Optional[str] = None,
        interval: float = ...,
        deadline: Optional[float] = None,
        evict_after: int = ...,
    ) -> Server: ...
    @property
    def urls(self) -> ServerUrls: ...
    @property
    def members(self) -> list[Member]: ...
    @property
    def epoch(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> Server: ...
    def __exit__(self, *_args: object) -> bool: ...

@final
class Update:
    """What happened since a cursor's previous read."""

    @property
    def peers(self) -> list[str]: ...
    @property
    def events(self) -> list[Event]: ...
    @property
    def state(self) -> Literal["syncing", "live", "stale"]: ...
    @property
    def synced(self) -> bool: ...
    @property
    def position(self) -> tuple[int, int]: ...
    @property
    def lost(self) -> int: ...

@final
class Cursor:
    """One consumer's position in a subscriber's queue of updates."""

    def wait(self, timeout: Optional[float] = None) -> Optional[Update]: ...
    def set_wakeup_fd(self, fd: Optional[int]) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...

@final
class SubscriberCore:
    def __new__(
        cls, publish: str = ..., snapshot: Optional[str] = ..., servers: Optional[Sequence[tuple[str, str]]] = ...
    ) -> SubscriberCore: ...
    @property
    def peers(self) -> list[str]: ...
    @property
    def members(self) -> list[Member]: ...
    @property
    def state(self) -> Literal["syncing", "live", "stale"]: ...
    @property
    def position(self) -> tuple[int, int]: ...
    @property
    def servers(self) -> list[ServerStatus]: ...
    @property
    def resyncs(self) -> int: ...
    def cursor(self, replay: bool = False, events: bool = True) -> Cursor: ...
    def poke(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...

@final
class ClientCore:
    def __new__(cls, service: str, survey: str | Sequence[str], metadata: Optional[_Metadata] = None) -> ClientCore: ...
    @property
    def member(self) -> Member: ...
    @property
    def connections(self) -> int: ...
    def set_metadata(self, metadata: Optional[_Metadata]) -> None: ...
    @property
    def closed(self) -> bool: ...
    def close(self) -> None: ...

"""Errors that stockq reports to its users.

StockqError                      every error with a message meant for a person; the CLI prints it on one line
├── ConfigurationError           a setting or option that cannot work
├── DatabaseNotMigrated          the database is behind the code's schema
├── DatabaseUnavailable          the database cannot be reached
├── JobError
│   ├── UnknownJob               a payload names a job that is not registered
│   ├── InvalidPayload           a payload that is not valid JSON or not a job envelope
│   └── PayloadNotSerializable   dispatch of arguments that JSON cannot carry
├── NotFound                     a named thing (failed job, document, profile…) does not exist
└── InvalidInput                 bad input from a file, a feed or the command line
"""

from __future__ import annotations


class StockqError(Exception):
    """stockq failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigurationError(StockqError):
    """The configuration is not usable."""

    exit_code = 2


class DatabaseNotMigrated(StockqError):
    """The database schema is not up to date: run `stockq migrate`."""


class DatabaseUnavailable(StockqError):
    """The database cannot be reached."""


class JobError(StockqError):
    """A job cannot be handled."""


class UnknownJob(JobError):
    """The payload names a job that is not registered."""

    exit_code = 2


class InvalidPayload(JobError):
    """The payload is not a valid job envelope."""

    exit_code = 2


class PayloadNotSerializable(JobError):
    """The job's arguments cannot be stored as JSON."""

    exit_code = 2


class NotFound(StockqError):
    """Not found."""


class InvalidInput(StockqError):
    """The input is not valid."""

    exit_code = 2

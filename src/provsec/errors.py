"""Typed errors. The CLI prints their message as one line and exits non-zero, never a traceback."""

from __future__ import annotations


class ProvsecError(Exception):
    """An expected failure with a message a sysadmin can act on."""

    exit_code = 2


class InputError(ProvsecError):
    """Bad input (inventory, parameters, files): the message names the input and the problem."""


class CommandError(ProvsecError):
    """An external command failed; the message says which and why."""

    exit_code = 3

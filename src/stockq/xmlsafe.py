"""The one set of lxml options stockq parses untrusted XML with (supplier feeds, shop responses): no entity
expansion, no DTD loading or validation, no network access, no huge trees; comments and PIs dropped."""

from __future__ import annotations

from typing import TypedDict


class SafeParserOptions(TypedDict):
    resolve_entities: bool
    no_network: bool
    load_dtd: bool
    dtd_validation: bool
    huge_tree: bool
    remove_comments: bool
    remove_pis: bool


SAFE_PARSER_OPTIONS = SafeParserOptions(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)

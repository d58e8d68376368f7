"""The WAN edge's nft counters become bounded textfile metrics; nft output that is not what we expect is a clear
error, never an empty file reported as success."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from provsec.errors import InputError
from provsec.wan.counters import parse_counters, render


def nft_json(*counters: tuple[str, str, int, int]) -> str:
    items: list[dict[str, object]] = [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]
    items += [{"counter": {"family": "inet", "name": name, "table": table, "handle": i, "packets": p, "bytes": b}}
              for i, (table, name, p, b) in enumerate(counters)]
    return json.dumps({"nftables": items})


def test_zone_pair_counters_become_labelled_series_and_other_tables_are_ignored() -> None:
    text = nft_json(("provsec_wan", "drop__agency__dc", 7, 420), ("provsec_wan", "drop__other__other", 1, 60),
                    ("provsec_wan", "spoofed", 3, 180), ("f2b-table", "drop__agency__dc", 99, 99))
    data = render(parse_counters(text, "provsec_wan", "nft")).decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(data) for s in fam.samples}
    assert samples[("provsec_wan_forward_dropped_packets_total", (("from_zone", "agency"), ("to_zone", "dc")))] == 7
    assert samples[("provsec_wan_forward_dropped_bytes_total", (("from_zone", "agency"), ("to_zone", "dc")))] == 420
    assert samples[("provsec_wan_forward_dropped_packets_total", (("from_zone", "other"), ("to_zone", "other")))] == 1
    assert samples[("provsec_wan_spoofed_packets_total", ())] == 3
    assert len([k for k in samples if k[0] == "provsec_wan_forward_dropped_packets_total"]) == 2


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "not the JSON of nft -j"),
    ('{"something": []}', "no 'nftables' list"),
    ('{"nftables": [{"counter": {"table": "provsec_wan", "name": "spoofed"}}]}', "without name, packets and bytes"),
])
def test_unexpected_nft_output_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_counters(text, "provsec_wan", "nft -j list counters")

"""Database drills and restores (provsec.backup.database): the dump readers on dump texts written here (the
tricky strings and names each server's dump tool really writes), then round trips against the REAL PostgreSQL
and MariaDB servers of this machine (started for these tests when they are stopped; the lab tests drill db1's)."""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from provsec.backup import database
from provsec.backup.database import DatabaseKind, Server, compare_counts, dump_complete, dump_row_counts
from provsec.backup.jobs import default_client_command, default_dump_command, parse_config
from provsec.backup.runner import drill, run_jobs
from provsec.cli import main
from provsec.errors import InputError, ProvsecError

# pytest imports test modules by file name (tests/unit is on sys.path); mypy knows the package path.
if TYPE_CHECKING:
    from tests.unit.test_backup import _metrics, make_config, newest
else:
    from test_backup import _metrics, make_config, newest  # noqa: F401 - newest: a fixture, used by name
from dbservers import running_servers

# ------------------------------------------------------------------------------------------- PostgreSQL dumps

PG_DUMP = r"""--
-- PostgreSQL database dump
--

\restrict abc123

SET statement_timeout = 0;
CREATE FUNCTION public.f() RETURNS text LANGUAGE sql AS $$
SELECT 'COPY public.fake (x) FROM stdin;'
$$;
CREATE TABLE public.t (id integer, s text);

--
-- Data for Name: Mixed Case; Type: TABLE DATA; Schema: Sales Dept; Owner: postgres
--

COPY "Sales Dept"."Mixed Case" (v) FROM stdin;
\\.
a\tb\\c
\.


COPY public."Order" (id, "from") FROM stdin;
1	x
2	y
\.


COPY public.empty (x) FROM stdin;
\.


COPY public."select" (x) FROM stdin;
7
\.


COPY public.action (id) FROM stdin;
1
\.


COPY public.t (id, s) FROM stdin;
1	a),(b
2	it's
3	back\\slash\nnew line
4	\N
\.


SELECT pg_catalog.setval('public.t_id_seq', 4, true);

--
-- PostgreSQL database dump complete
--

\unrestrict abc123

"""

PG_COUNTS = {'"Sales Dept"."Mixed Case"': 2, 'public."Order"': 2, "public.empty": 0, 'public."select"': 1,
             "public.action": 1, "public.t": 4}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_postgresql_counts_copy_rows_per_table_as_pg_dump_names_them(tmp_path: Path) -> None:
    assert dump_row_counts(_write(tmp_path, "db.sql", PG_DUMP), "postgresql") == PG_COUNTS


def test_postgresql_rows_longer_than_a_read_are_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are read in pieces of at most CHUNK bytes (bounded memory): a row in many pieces is still one row,
    and a piece `\\.` that ends a long row is not the end of the data."""
    monkeypatch.setattr(database, "CHUNK", 3)
    text = PG_DUMP.replace("2\tit's\n", "2\t" + "x" * 100 + "\\.\n")
    assert dump_row_counts(_write(tmp_path, "db.sql", text), "postgresql") == PG_COUNTS


def test_postgresql_trailer(tmp_path: Path) -> None:
    assert dump_complete(_write(tmp_path, "full.sql", PG_DUMP), "postgresql")
    older = PG_DUMP[: PG_DUMP.index("\\unrestrict")]  # pg_dump before 15.14 ends with the trailer and `--`
    assert dump_complete(_write(tmp_path, "older.sql", older), "postgresql")
    cut = PG_DUMP[: PG_DUMP.index("SELECT pg_catalog.setval")]
    assert not dump_complete(_write(tmp_path, "cut.sql", cut), "postgresql")
    assert not dump_complete(_write(tmp_path, "empty.sql", ""), "postgresql")
    big = "-- x\n" * 50_000 + PG_DUMP  # only the tail is read
    assert dump_complete(_write(tmp_path, "big.sql", big), "postgresql")


# ---------------------------------------------------------------------------------------------- MariaDB dumps

# mysqldump and older mariadb-dump: one line per INSERT. \' and \\ escapes, `),(` and `(` inside strings.
MY_ONE_LINE = r"""-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)
/*!40101 SET NAMES utf8mb4 */;
DROP TABLE IF EXISTS `t`;
CREATE TABLE `t` (
  `id` int(11) NOT NULL,
  `s` text DEFAULT NULL COMMENT 'it''s (a) comment',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
LOCK TABLES `t` WRITE;
INSERT INTO `t` VALUES (1,'a),(b'),(2,'it\'s'),(3,'back\\'),(4,'\\\'),(\''),(5,NULL),(6,'(((\n)))'),(7,0x2829);
INSERT INTO `t` VALUES (8,'\\\\'),(9,'x\'');
UNLOCK TABLES;
CREATE TABLE `empty` (
  `x` int(11) DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `select` (
  `x` int(11) DEFAULT NULL
) ENGINE=InnoDB;
INSERT INTO `select` VALUES (1),(2),(3);
CREATE TABLE `we``ird (x)` (
  `v` text
) ENGINE=InnoDB;
INSERT INTO `we``ird (x)` (`v`) VALUES ('VALUES (1),(2)');
/*!50001 CREATE TABLE `a_view` (
  `id` tinyint NOT NULL
) ENGINE=MyISAM */;
-- Dump completed on 2026-11-26 10:00:00
"""

MY_COUNTS = {"t": 9, "empty": 0, "select": 3, "we`ird (x)": 1}

# mariadb-dump 10.11 (Debian 12): `VALUES` alone on the INSERT line, then one row per line.
MY_ROW_LINES = r"""-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
CREATE TABLE `t` (
  `id` int(11) NOT NULL,
  `s` text DEFAULT NULL
) ENGINE=InnoDB;
INSERT INTO `t` VALUES
(1,'a),(b'),
(2,'it\'s'),
(3,'back\\'),
(4,'\\\'),(\''),
(5,NULL),
(6,'(((\n)))'),
(7,0x2829);
INSERT INTO `t` VALUES
(8,'\\\\'),
(9,'x\'');
CREATE TABLE `empty` (
  `x` int(11) DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `select` (
  `x` int(11) DEFAULT NULL
) ENGINE=InnoDB;
INSERT INTO `select` VALUES
(1),
(2),
(3);
CREATE TABLE `we``ird (x)` (
  `v` text
) ENGINE=InnoDB;
INSERT INTO `we``ird (x)` VALUES
('VALUES (1),(2)');

-- Dump completed on 2026-11-26 10:00:00
"""


@pytest.mark.parametrize("text", [MY_ONE_LINE, MY_ROW_LINES], ids=["one-line-inserts", "one-row-per-line"])
def test_mariadb_counts_tuples_outside_strings(tmp_path: Path, text: str) -> None:
    assert dump_row_counts(_write(tmp_path, "db.sql", text), "mariadb") == MY_COUNTS


def test_mariadb_trailer(tmp_path: Path) -> None:
    assert dump_complete(_write(tmp_path, "a.sql", MY_ONE_LINE), "mariadb")
    assert dump_complete(_write(tmp_path, "b.sql", MY_ROW_LINES + "\n\n"), "mariadb")
    assert dump_complete(_write(tmp_path, "c.sql", MY_ONE_LINE.replace(" on 2026-11-26 10:00:00", "")), "mariadb")
    assert not dump_complete(_write(tmp_path, "cut.sql", MY_ROW_LINES[:400]), "mariadb")
    assert not dump_complete(_write(tmp_path, "pg.sql", PG_DUMP), "mariadb")
    assert not dump_complete(_write(tmp_path, "my.sql", MY_ONE_LINE), "postgresql")


def test_unreadable_dump_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the dump"):
        dump_row_counts(tmp_path / "absent.sql", "postgresql")
    with pytest.raises(InputError, match="cannot read the dump"):
        dump_complete(tmp_path / "absent.sql", "mariadb")


def test_compare_counts_names_every_table_that_differs() -> None:
    assert compare_counts({"a": 1, "b": 0}, {"a": 1, "b": 0}) == []
    assert compare_counts({"a": 3, "gone": 1}, {"a": 2, "extra": 5}) == [
        "table a: 3 rows in the dump, 2 loaded",
        "table extra: loaded (5 rows), not in the dump",
        "table gone: in the dump (1 rows), missing after the load",
    ]


def test_scratch_and_restore_names() -> None:
    assert database.scratch_name("ioffice") == "provsec_drill_ioffice"
    long = database.scratch_name("x" * 63)
    assert len(long) == 63 and long.startswith("provsec_drill_xxx") and long != database.scratch_name("x" * 62 + "y")
    assert database.check_name("ioffice_restored") == "ioffice_restored"
    for bad in ("", "-x", "a;DROP", "a b", "x" * 64, "tên"):
        with pytest.raises(InputError, match="database name"):
            database.check_name(bad)


# ------------------------------------------------------------------------------------- the client call point


def test_client_failures_are_one_line_naming_the_database_and_command(tmp_path: Path) -> None:
    failing = Server("mariadb", ("sh", "-c", "echo; echo -----; echo 'ERROR 1049: boom' >&2; exit 4", "sh"))
    with pytest.raises(database.DatabaseError) as caught:
        failing.create("ioffice")
    assert str(caught.value).startswith("database ioffice: sh -c ")
    assert str(caught.value).endswith(" exited 4: ERROR 1049: boom") and caught.value.exit_code == 1
    with pytest.raises(ProvsecError, match=r"^database x: /nonexistent/psql: not installed$") as missing:
        Server("postgresql", ("/nonexistent/psql",)).exists("x")
    assert missing.value.exit_code == 3
    with pytest.raises(InputError, match="cannot read the dump"):
        Server("mariadb", ("true",)).load("x", tmp_path / "absent.sql")


def test_a_client_that_hangs_is_killed_with_its_children(tmp_path: Path) -> None:
    """runuser → psql: the timeout kills the whole process group, not only the first process."""
    marker = tmp_path / "child-ran-on"
    hangs = Server("postgresql", ("sh", "-c", f"(sleep 3; touch {marker}) & wait", "sh"), timeout=0.5)
    dump = _write(tmp_path, "db.sql", PG_DUMP)
    started = time.monotonic()
    with pytest.raises(ProvsecError, match=r"database x: sh -c .* < .*db\.sql: no answer after 0 s"):
        hangs.load("x", dump)
    assert time.monotonic() - started < 2.5
    time.sleep(3)
    assert not marker.exists()  # the grandchild died with the group


# ---------------------------------------------------------------------------------------------- configuration

BASE = {"repository": "/r", "password_file": "/p", "state_dir": "/s", "group_by": ["host", "tags"],
        "retention": {"db": {"keep_daily": 7}}}


def test_database_job_defaults_load_under_another_name() -> None:
    cfg = parse_config({**BASE, "jobs": [{"name": "pg", "kind": "postgresql", "class": "db", "database": "ioffice"},
                                         {"name": "my", "kind": "mariadb", "class": "db", "database": "portal"}]}, "c")
    pg, my = cfg.jobs
    assert pg.dump_command == ("runuser", "-u", "postgres", "--", "pg_dump", "--format=plain", "--dbname", "ioffice")
    assert "--databases" not in my.dump_command and my.dump_command[-1] == "portal"
    assert my.dump_command == default_dump_command("mariadb", "portal")
    assert (pg.stdin_filename, my.stdin_filename) == ("ioffice.sql", "portal.sql")
    assert pg.client_command == default_client_command("postgresql") == ("runuser", "-u", "postgres", "--", "psql")
    assert my.client_command == ("mariadb",)


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"client_command": "psql -U x"}, "c: job pg: client_command: expected a non-empty list of strings"),
        ({"client_command": []}, "c: job pg: client_command: expected a non-empty list of strings"),
        ({"client_command": ["psql", ""]}, r"c: job pg: client_command\[1\]: expected a non-empty string"),
        ({"kind": "files", "paths": ["/srv"], "database": None, "client_command": ["psql"]},
         "c: job pg: client_command: not for kind files"),
    ],
)
def test_client_command_is_validated(job: dict[str, Any], message: str) -> None:
    raw = {"name": "pg", "kind": "postgresql", "class": "db", "database": "ioffice", **job}
    if raw.get("database") is None:
        raw.pop("database")
    with pytest.raises(InputError, match="^" + message):
        parse_config({**BASE, "jobs": [raw]}, "c")


def test_client_command_override_is_kept() -> None:
    cfg = parse_config({**BASE, "jobs": [{"name": "my", "kind": "mariadb", "class": "db", "database": "portal",
                                          "client_command": ["mariadb", "--socket=/run/mysqld/mysqld.sock"]}]}, "c")
    assert cfg.jobs[0].client_command == ("mariadb", "--socket=/run/mysqld/mysqld.sock")


def test_drill_of_a_dump_without_trailer_fails_without_any_server(tmp_path: Path, newest: str) -> None:
    """A dump cut short is found before any database is touched (no server needed for this one)."""
    cut = ["sh", "-c", "printf 'CREATE TABLE t (id int);\\nCOPY public.t (id) FROM stdin;\\n1\\n'"]
    config = make_config(tmp_path, newest, [{"name": "db", "kind": "postgresql", "class": "databases",
                                             "database": "ioffice", "dump_command": cut}])
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok"  # restic cannot know; the drill does
    result = drill(config, config.job("db"), tmp_path / "scratch")
    assert result.state == "failed" and "ioffice.sql has no end-of-dump trailer" in result.reason
    assert result.rto_s is None and result.rpo_s is not None and result.tables_checked == 0
    assert list((tmp_path / "scratch").iterdir()) == []


# ------------------------------------------------------------------------------------------------ real servers

SOURCE = "provsec_test_src"

SETUP: dict[DatabaseKind, str] = {
    "postgresql": r"""
CREATE TABLE t (id int PRIMARY KEY, s text);
INSERT INTO t VALUES (1, 'a),(b'), (2, E'it''s \\ back\nslash'), (3, NULL), (4, '\.');
CREATE TABLE "Order" (id int);
INSERT INTO "Order" SELECT generate_series(1, 50);
CREATE TABLE "select" (x int);
INSERT INTO "select" VALUES (1);
CREATE TABLE empty (x int);
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Mixed Case" (v text);
INSERT INTO "Sales Dept"."Mixed Case" VALUES (E'\\.'), ('tab	in it');
CREATE TABLE part (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (0) TO (10);
INSERT INTO part VALUES (1, 1), (2, 2);
CREATE VIEW v AS SELECT * FROM t;
""",
    "mariadb": r"""
CREATE TABLE t (id int PRIMARY KEY, s text);
INSERT INTO t VALUES (1, 'a),(b'), (2, 'it\'s \\ back\nslash'), (3, NULL), (4, '\\\'),(\'');
CREATE TABLE `Order` (id int);
INSERT INTO `Order` SELECT seq FROM seq_1_to_50;
CREATE TABLE `select` (x int);
INSERT INTO `select` VALUES (1);
CREATE TABLE empty (x int);
CREATE TABLE `we``ird` (v text);
INSERT INTO `we``ird` VALUES ('VALUES (1),(2)');
CREATE VIEW v AS SELECT * FROM t;
""",
}
TABLES = {"postgresql": 6, "mariadb": 5}  # base tables (a partitioned parent and views hold no rows of their own)
ROWS = {"postgresql": 4 + 50 + 1 + 0 + 2 + 2, "mariadb": 4 + 50 + 1 + 0 + 1}
T = {"postgresql": "public.t", "mariadb": "t"}
EMPTY = {"postgresql": "public.empty", "mariadb": "empty"}
TRAILER = {"postgresql": "-- PostgreSQL database dump complete", "mariadb": "-- Dump completed"}
@pytest.fixture(scope="module")
def running() -> Iterator[dict[DatabaseKind, Server]]:
    """Both real servers of this machine, answering; the ones this fixture started are stopped at the end."""
    with running_servers("postgresql", "mariadb") as servers:
        yield servers


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest, running: dict[DatabaseKind, Server]) -> Iterator[Server]:
    """The real server of this kind with a source database SOURCE holding the tables above."""
    kind: DatabaseKind = request.param
    srv = running[kind]
    srv.drop(SOURCE)
    srv.create(SOURCE)
    srv._sql(SOURCE, SETUP[kind], about=SOURCE, timeout=60)
    yield srv
    for name in (SOURCE, database.scratch_name(SOURCE), "provsec_test_restored", "provsec_test_failed"):
        srv.drop(name)


def _job(kind: DatabaseKind, **extra: Any) -> dict[str, Any]:
    return {"name": "db", "kind": kind, "class": "databases", "database": SOURCE, **extra}


def test_drill_round_trip_on_the_real_server(
    tmp_path: Path, newest: str, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    kind = server.kind
    config = make_config(tmp_path, newest, [_job(kind)])
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok", record.result.reason
    # a scratch database a killed drill left behind is dropped first
    server.create(database.scratch_name(SOURCE))
    result = drill(config, config.job("db"), tmp_path / "scratch")
    assert result.state == "ok", result.reason
    assert result.tables_checked == TABLES[kind] and result.files_checked == 0
    assert f"{TABLES[kind]} tables, {ROWS[kind]} rows loaded" in result.reason
    assert result.rto_s is not None and result.rto_s > 0 and result.rpo_s is not None
    assert not server.exists(database.scratch_name(SOURCE))  # dropped
    assert list((tmp_path / "scratch").iterdir()) == []  # the restored dump removed
    assert _metrics(config)[("provsec_backup_drill_ok", (("backup_job", "db"),))] == 1.0
    # `drill` with no job name drills database jobs too, and --json carries tables_checked
    assert main(["backup", "--config", config.source, "drill", "--json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert shown["state"] == "ok" and shown["tables_checked"] == TABLES[kind]
    stored = json.loads((config.state_dir / "drills" / "db.json").read_text())
    assert stored["tables_checked"] == TABLES[kind] and stored["files_checked"] == 0


def _tampered(kind: DatabaseKind, statement: str) -> list[str]:
    """The default dump with a statement slipped in just before the trailer (the trailer stays last)."""
    dump = shlex.join(default_dump_command(kind, SOURCE))
    script = f"/^{TRAILER[kind]}/i {statement}"
    return ["bash", "-c", f"set -o pipefail; {dump} | sed {shlex.quote(script)}"]


def test_drill_names_the_tables_whose_rows_did_not_arrive(tmp_path: Path, newest: str, server: Server) -> None:
    kind = server.kind
    lose = {"postgresql": 'DELETE FROM public.t WHERE id = 1; DROP TABLE public.empty; DELETE FROM public."select";',
            "mariadb": "DELETE FROM t WHERE id = 1; DROP TABLE empty; DELETE FROM `select`;"}[kind]
    config = make_config(tmp_path, newest, [_job(kind, dump_command=_tampered(kind, lose))])
    [record] = run_jobs(config, config.jobs)
    assert record.result.state == "ok", record.result.reason
    result = drill(config, config.job("db"), tmp_path / "scratch")
    assert result.state == "failed"
    assert f"3 of {TABLES[kind]} tables differ from the dump" in result.reason, result.reason
    assert f"table {T[kind]}: 4 rows in the dump, 3 loaded" in result.reason
    assert f"table {EMPTY[kind]}: in the dump (0 rows), missing after the load" in result.reason
    sel = 'public."select"' if kind == "postgresql" else "select"
    assert f"table {sel}: 1 rows in the dump, 0 loaded" in result.reason
    assert result.tables_checked == TABLES[kind] and result.rto_s is not None
    assert not server.exists(database.scratch_name(SOURCE))
    assert _metrics(config)[("provsec_backup_drill_ok", (("backup_job", "db"),))] == 0.0


def test_drill_of_a_dump_that_does_not_load(tmp_path: Path, newest: str, server: Server) -> None:
    kind = server.kind
    config = make_config(tmp_path, newest, [_job(kind, dump_command=_tampered(kind, "SELECT no_such_fn();"))])
    run_jobs(config, config.jobs)
    result = drill(config, config.job("db"), tmp_path / "scratch")
    assert result.state == "failed" and result.rto_s is None
    scratch = database.scratch_name(SOURCE)
    assert f"database {scratch}: " in result.reason and "exited" in result.reason
    assert "no_such_fn" in result.reason.lower() or "does not exist" in result.reason, result.reason
    assert not server.exists(scratch)
    assert list((tmp_path / "scratch").iterdir()) == []


def test_restore_to_a_new_database(
    tmp_path: Path, newest: str, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    kind = server.kind
    config = make_config(tmp_path, newest, [_job(kind), _job(kind, name="bad",
                                                             dump_command=_tampered(kind, "SELECT no_such_fn();"))])
    run_jobs(config, config.jobs)
    base = ["backup", "--config", config.source, "restore"]
    assert main([*base, "db", "--to-database", "provsec_test_restored"]) == 0
    assert "into the new database provsec_test_restored" in capsys.readouterr().out
    assert server.table_counts("provsec_test_restored") == server.table_counts(SOURCE)
    # never into an existing database: refused before anything is restored, exit 2, nothing changed
    assert main([*base, "db", "--to-database", SOURCE]) == 2
    assert f"database {SOURCE} exists on this server" in capsys.readouterr().err
    assert server.table_counts(SOURCE)[T[kind]] == 4
    # a dump that does not load: exit 1, and the database the restore created is gone again
    assert main([*base, "bad", "--to-database", "provsec_test_failed"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("provsec: error: database provsec_test_failed: ") and "dropped again" in err
    assert len(err.strip().splitlines()) == 1
    assert not server.exists("provsec_test_failed")
    # --target still restores the dump file
    assert main([*base, "db", "--target", str(tmp_path / "out")]) == 0
    assert dump_complete(tmp_path / "out" / f"{SOURCE}.sql", kind)


def test_restore_options(tmp_path: Path, newest: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, newest, [{"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(tmp_path)]}])
    base = ["backup", "--config", config.source, "restore", "docs"]
    with pytest.raises(SystemExit) as neither:
        main(base)
    assert neither.value.code == 2
    with pytest.raises(SystemExit) as both:
        main([*base, "--target", "/tmp/x", "--to-database", "x"])
    assert both.value.code == 2
    capsys.readouterr()
    assert main([*base, "--to-database", "x"]) == 2
    assert "job docs: --to-database is for database jobs" in capsys.readouterr().err


# --------------------------------------------------------------------------------------- PostgreSQL roles (globals)

GLOBALS = r'''--
-- PostgreSQL database cluster dump
--

\restrict k3y

SET default_transaction_read_only = off;

CREATE ROLE "Văn ""thư""";
ALTER ROLE "Văn ""thư""" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE app;
ALTER ROLE app WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
ALTER ROLE app SET search_path TO 'public';
ALTER ROLE postgres SET work_mem TO '64MB';
CREATE TABLESPACE fast OWNER postgres LOCATION '/srv/fast';
GRANT ALL ON TABLESPACE fast TO app;
COMMENT ON TABLESPACE fast IS 'SSD';
GRANT "Văn ""thư""" TO app GRANTED BY postgres;

\unrestrict k3y

--
-- PostgreSQL database cluster dump complete
--

'''


def test_roles_script_leaves_existing_roles_and_tablespaces_out(tmp_path: Path) -> None:
    path = _write(tmp_path, "g.sql", GLOBALS)
    script = database.roles_script(path, {"postgres", "other"})
    assert script.created == ('Văn "thư"', "app")
    assert script.existing == ("postgres",)
    assert script.tablespaces == ("fast",)
    text = script.sql.decode()
    assert "ROLE postgres" not in text  # neither its CREATE nor its two ALTERs: an existing role stays as it is
    assert "TABLESPACE" not in text  # neither its CREATE nor the grant and comment that name it
    for kept in ('CREATE ROLE "Văn ""thư""";', "CREATE ROLE app;", "ALTER ROLE app SET search_path TO 'public';",
                 'GRANT "Văn ""thư""" TO app GRANTED BY postgres;', "\\restrict k3y", "\\unrestrict k3y"):
        assert kept in text, kept
    # every role exists: nothing is created, the membership stays
    every = database.roles_script(path, {"postgres", "app", 'Văn "thư"'})
    assert every.created == () and len(every.existing) == 3
    assert "CREATE ROLE" not in every.sql.decode() and "GRANT" in every.sql.decode()


def test_globals_trailer(tmp_path: Path) -> None:
    assert database.globals_complete(_write(tmp_path, "ok.sql", GLOBALS))
    cut = GLOBALS[: GLOBALS.index("GRANT")]
    assert not database.globals_complete(_write(tmp_path, "cut.sql", cut))
    # a database dump's trailer is not a cluster dump's
    assert not database.globals_complete(_write(tmp_path, "db.sql", PG_DUMP))


def test_roles_job_config() -> None:
    base = {"repository": "/r", "password_file": "/p", "state_dir": "/s", "group_by": ["host"],
            "retention": {"databases": {"keep_last": 1}}}
    config = parse_config({**base, "jobs": [{"name": "roles", "kind": "postgresql_roles", "class": "databases"}]},
                          "cfg.yml")
    job = config.job("roles")
    assert job.dump_command == ("runuser", "-u", "postgres", "--", "pg_dumpall", "--globals-only")
    assert job.client_command == ("runuser", "-u", "postgres", "--", "psql")
    assert job.stdin_filename == "postgresql-globals.sql" and job.database is None
    with pytest.raises(InputError, match=r"cfg.yml: job roles: database: not for kind postgresql_roles"):
        parse_config({**base, "jobs": [{"name": "roles", "kind": "postgresql_roles", "class": "databases",
                                        "database": "x"}]}, "cfg.yml")


ROLE_APP, ROLE_DOC = "provsec_test_app", "provsec test Văn thư"
ROLES_SETUP = f"""
CREATE ROLE {ROLE_APP} LOGIN CONNECTION LIMIT 7;
CREATE ROLE "{ROLE_DOC}" NOLOGIN;
GRANT "{ROLE_DOC}" TO {ROLE_APP};
ALTER ROLE {ROLE_APP} SET search_path TO public;
"""
ROLES_STATE = f"""
SELECT rolname, rolcanlogin, rolconnlimit,
       (SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
        WHERE m.member = r.oid)
FROM pg_roles r WHERE rolname IN ('{ROLE_APP}', '{ROLE_DOC}') ORDER BY rolname;
"""  # noqa: S608 - constants of this test
ROLES_EXPECTED = [f"{ROLE_DOC}|f|-1|", f"{ROLE_APP}|t|7|{ROLE_DOC}"]


@pytest.fixture
def pg(running: dict[DatabaseKind, Server]) -> Iterator[Server]:
    srv = running["postgresql"]
    _drop_test_roles(srv)
    yield srv
    for name in (SOURCE, "provsec_test_restored"):
        srv.drop(name)
    _drop_test_roles(srv)


def _drop_test_roles(srv: Server) -> None:
    for name in (SOURCE, "provsec_test_restored"):
        srv.drop(name)
    srv._sql(None, f'DROP ROLE IF EXISTS {ROLE_APP}; DROP ROLE IF EXISTS "{ROLE_DOC}";', about="roles", timeout=60)


def test_roles_back_up_drill_and_restore_on_a_server_that_lost_them(
    tmp_path: Path, newest: str, pg: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """The disaster case on a real server: roles saved; the database's tables belong to them; the roles and the
    database are lost; the database alone does not restore (a hint names the roles job); the roles job
    restores them (attributes, memberships) and then the database does."""
    pg._sql(None, ROLES_SETUP, about="roles", timeout=60)
    pg.create(SOURCE)
    owned = f'CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2); ALTER TABLE t OWNER TO {ROLE_APP}; ' \
            f'GRANT SELECT ON t TO "{ROLE_DOC}";'  # noqa: S608 - constants of this test
    pg._sql(SOURCE, owned, about=SOURCE, timeout=60)
    config = make_config(tmp_path, newest, [{"name": "roles", "kind": "postgresql_roles", "class": "databases"},
                                            _job("postgresql")])
    records = run_jobs(config, config.jobs)
    assert [r.result.state for r in records] == ["ok", "ok"], [r.result.reason for r in records]

    # drill with the roles present: nothing to create, the script applies
    result = drill(config, config.job("roles"), tmp_path / "scratch")
    assert result.state == "ok", result.reason
    assert "creates the 0 others applies (rolled back)" in result.reason

    # the roles and the database are lost
    _drop_test_roles(pg)
    assert pg._sql(None, ROLES_STATE, about="roles", timeout=60) == []
    # drill: the 2 roles would be created, and the rollback leaves the server without them
    result = drill(config, config.job("roles"), tmp_path / "scratch")
    assert result.state == "ok", result.reason
    assert "creates the 2 others applies (rolled back)" in result.reason
    assert pg._sql(None, ROLES_STATE, about="roles", timeout=60) == []
    assert _metrics(config)[("provsec_backup_drill_ok", (("backup_job", "roles"),))] == 1.0

    base = ["backup", "--config", config.source, "restore"]
    assert main([*base, "db", "--to-database", SOURCE]) == 1
    err = capsys.readouterr().err
    assert re.search(r'role "provsec[ _]test[^"]*" does not exist', err), err
    assert "restore the roles first: provsec backup restore roles --to-server" in err
    assert not pg.exists(SOURCE)

    assert main([*base, "roles", "--to-server"]) == 0
    out = capsys.readouterr().out
    assert f"roles created: {ROLE_DOC}, {ROLE_APP}" in out or f"roles created: {ROLE_APP}, {ROLE_DOC}" in out, out
    assert pg._sql(None, ROLES_STATE, about="roles", timeout=60) == ROLES_EXPECTED
    assert main([*base, "db", "--to-database", SOURCE]) == 0
    owner = pg._sql(SOURCE, "SELECT tableowner FROM pg_tables WHERE tablename = 't';", about=SOURCE, timeout=60)
    assert owner == [ROLE_APP]
    assert pg.table_counts(SOURCE) == {"public.t": 2}

    # again: every role exists now, none is created or changed
    assert main([*base, "roles", "--to-server"]) == 0
    assert "roles created: none" in capsys.readouterr().out
    assert pg._sql(None, ROLES_STATE, about="roles", timeout=60) == ROLES_EXPECTED


def test_roles_restore_options(tmp_path: Path, newest: str, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, newest, [{"name": "roles", "kind": "postgresql_roles", "class": "databases"},
                                            {"name": "docs", "kind": "files", "class": "documents",
                                             "paths": [str(tmp_path)]}])
    base = ["backup", "--config", config.source, "restore"]
    assert main([*base, "roles", "--to-database", "x"]) == 2
    assert "job roles: a postgresql_roles job restores with --to-server" in capsys.readouterr().err
    assert main([*base, "docs", "--to-server"]) == 2
    assert "job docs: --to-server is for postgresql_roles jobs" in capsys.readouterr().err

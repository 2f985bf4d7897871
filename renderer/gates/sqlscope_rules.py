"""The tables behind ``renderer.gates.sqlscope`` (rule ids, and which statements, settings and
functions each rule rejects; statement kinds are pglast (libpg_query) node names), the plugin's
schema as its manifest names it, and small text helpers."""

from __future__ import annotations

import re
from pathlib import Path

from pglast import enums

from renderer.core.yamlio import YamlProblem, load_document

RULES = {
    "scope-role": "changes a role, the session's role or an object's owner",
    "scope-privilege": "grants or revokes privileges",
    "scope-program": "runs a program, reads or writes server files, or loads a library",
    "scope-extension": "installs or changes an extension, a language or a foreign-data wrapper",
    "scope-schema": "creates, renames or drops a schema",
    "scope-other-schema": "names an object in another schema or database",
    "scope-search-path": "changes search_path",
    "scope-database": "changes the server, a database or a database-wide object",
    "scope-security-definer": "makes a function run with its owner's privileges",
    "scope-language": "uses a procedural language other than sql and plpgsql",
    "scope-dynamic-sql": "runs dynamic SQL (EXECUTE), which cannot be checked",
    "syntax-error": "PostgreSQL's parser rejects the text",
}
TRUSTED_LANGUAGES = frozenset({"sql", "plpgsql"})
ROLE_SETTINGS = frozenset({"role", "session_authorization"})
SERVER_SETTINGS = frozenset(
    {"session_replication_role", "default_tablespace", "temp_tablespaces", "local_preload_libraries",
     "session_preload_libraries", "dynamic_library_path", "allow_system_table_mods"}
)
# Functions that change settings behind SET's back, touch server files or other sessions.
BANNED_FUNCTIONS = {
    "set_config": "scope-search-path",
    **dict.fromkeys(
        ("pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export",
         "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_logdir_ls", "dblink", "dblink_exec",
         "dblink_connect", "dblink_connect_u", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
         "pg_rotate_logfile", "pg_switch_wal", "pg_promote", "pg_create_restore_point"),
        "scope-program",
    ),
}
SEQUENCE_FUNCTIONS = frozenset({"nextval", "currval", "setval", "pg_get_serial_sequence"})
REG_TYPES = frozenset({"regclass", "regproc", "regprocedure", "regoper", "regoperator", "regtype",
                        "regnamespace", "regrole", "regconfig", "regdictionary", "regcollation"})
DB_WIDE = {
    "AlterSystemStmt": "ALTER SYSTEM changes the whole server",
    "CreatedbStmt": "CREATE DATABASE", "AlterDatabaseStmt": "ALTER DATABASE",
    "AlterDatabaseSetStmt": "ALTER DATABASE ... SET", "AlterDatabaseRefreshCollStmt": "ALTER DATABASE",
    "DropdbStmt": "DROP DATABASE", "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE", "AlterTableSpaceOptionsStmt": "ALTER TABLESPACE",
    "AlterTableMoveAllStmt": "ALTER ... ALL IN TABLESPACE", "CreateEventTrigStmt": "CREATE EVENT TRIGGER",
    "AlterEventTrigStmt": "ALTER EVENT TRIGGER", "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "AlterSubscriptionStmt": "ALTER SUBSCRIPTION", "DropSubscriptionStmt": "DROP SUBSCRIPTION",
    "CreatePublicationStmt": "CREATE PUBLICATION", "AlterPublicationStmt": "ALTER PUBLICATION",
    "CreateCastStmt": "CREATE CAST (casts belong to no schema)", "CreateAmStmt": "CREATE ACCESS METHOD",
    "CreateTransformStmt": "CREATE TRANSFORM", "SecLabelStmt": "SECURITY LABEL",
    "AlterCollationStmt": "ALTER COLLATION ... REFRESH VERSION", "CheckPointStmt": "CHECKPOINT",
}
EXTENSION = {
    "CreateExtensionStmt": "CREATE EXTENSION", "AlterExtensionStmt": "ALTER EXTENSION",
    "AlterExtensionContentsStmt": "ALTER EXTENSION", "CreatePLangStmt": "CREATE LANGUAGE",
    "CreateFdwStmt": "CREATE FOREIGN DATA WRAPPER", "AlterFdwStmt": "ALTER FOREIGN DATA WRAPPER",
    "CreateForeignServerStmt": "CREATE SERVER", "AlterForeignServerStmt": "ALTER SERVER",
    "CreateUserMappingStmt": "CREATE USER MAPPING", "AlterUserMappingStmt": "ALTER USER MAPPING",
    "DropUserMappingStmt": "DROP USER MAPPING", "ImportForeignSchemaStmt": "IMPORT FOREIGN SCHEMA",
    "CreateForeignTableStmt": "CREATE FOREIGN TABLE",
}
ROLE = {
    "CreateRoleStmt": "CREATE ROLE/USER/GROUP", "AlterRoleStmt": "ALTER ROLE/USER/GROUP",
    "AlterRoleSetStmt": "ALTER ROLE ... SET", "DropRoleStmt": "DROP ROLE/USER/GROUP",
    "GrantRoleStmt": "GRANT/REVOKE of a role", "DropOwnedStmt": "DROP OWNED BY",
    "ReassignOwnedStmt": "REASSIGN OWNED", "AlterOwnerStmt": "ALTER ... OWNER TO",
}
DROP_KIND = {
    enums.ObjectType.OBJECT_SCHEMA: ("scope-schema", "DROP SCHEMA"),
    enums.ObjectType.OBJECT_EXTENSION: ("scope-extension", "DROP EXTENSION"),
    enums.ObjectType.OBJECT_LANGUAGE: ("scope-extension", "DROP LANGUAGE"),
    enums.ObjectType.OBJECT_FDW: ("scope-extension", "DROP FOREIGN DATA WRAPPER"),
    enums.ObjectType.OBJECT_FOREIGN_SERVER: ("scope-extension", "DROP SERVER"),
    enums.ObjectType.OBJECT_EVENT_TRIGGER: ("scope-database", "DROP EVENT TRIGGER"),
    enums.ObjectType.OBJECT_PUBLICATION: ("scope-database", "DROP PUBLICATION"),
    enums.ObjectType.OBJECT_CAST: ("scope-database", "DROP CAST"),
    enums.ObjectType.OBJECT_ACCESS_METHOD: ("scope-database", "DROP ACCESS METHOD"),
    enums.ObjectType.OBJECT_TRANSFORM: ("scope-database", "DROP TRANSFORM"),
}
# Object kinds named relative to a table (schema.table.name): the schema is third from the end.
SUB_OBJECTS = frozenset({enums.ObjectType.OBJECT_COLUMN, enums.ObjectType.OBJECT_TRIGGER,
                          enums.ObjectType.OBJECT_POLICY, enums.ObjectType.OBJECT_RULE,
                          enums.ObjectType.OBJECT_TABCONSTRAINT})
IDENT = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*))\s*\.')
WHY = ("a migration runs as the plugin's own role and may only touch objects in its schema "
        "{schema!r} (docs/migrations.md)")


def plugin_schema(version_dir: Path) -> str:
    """The schema a catalog version's role owns: ``spec.database.schema``, else the plugin name with ``_``.

    A plugin.yaml that cannot be read gives the default (``load`` reports the file itself).
    """
    default = Path(version_dir).parent.name.replace("-", "_")
    try:
        path = Path(version_dir) / "plugin.yaml"
        if path.is_symlink() or not path.is_file():
            return default
        data = load_document(path.read_bytes()).data
        schema = ((data.get("spec") or {}).get("database") or {}).get("schema")
    except (OSError, YamlProblem, AttributeError):
        return default
    return schema if isinstance(schema, str) and schema else default


PUBLIC_RE = re.compile(r'(?i)(?<![\w$".])(?:public|"public")\s*\.')


SPACE_RE = re.compile(r"(?:\s+|--[^\n]*)+")


def skip_space(text: str, pos: int) -> int:
    """The offset of the first token at or after ``pos``: past blanks, ``--`` and nested ``/* */`` comments."""
    while True:
        m = SPACE_RE.match(text, pos)
        if m:
            pos = m.end()
        if not text.startswith("/*", pos):
            return pos
        depth, pos = 1, pos + 2
        while depth and pos < len(text):
            if text.startswith("/*", pos):
                depth, pos = depth + 1, pos + 2
            elif text.startswith("*/", pos):
                depth, pos = depth - 1, pos + 2
            else:
                pos += 1


def split_name(text: str) -> list[str]:
    """``a.b``, ``"A".b`` as PostgreSQL reads a qualified name in a string (unquoted parts folded)."""
    parts, cur, quoted, i = [], "", False, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == '"' and text[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            elif ch == '"':
                quoted = False
            else:
                cur += ch
        elif ch == '"':
            quoted = True
        elif ch == ".":
            parts.append(cur)
            cur = ""
        elif not ch.isspace():
            cur += ch.lower()
        i += 1
    parts.append(cur)
    return parts

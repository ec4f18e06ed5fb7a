"""`manage.py add_mcp_server NAME URL [--secret-file F] [--tools T1,T2] [--allow-private]`:
register (or update) an MCP tool server as staff can in /admin/, then list its tools: one
`NAME__TOOL` per line of stdout for each tool declared to the model; the tools left out, and
why, on stderr. The URL passes the SSRF guard first (a loopback or private address needs
`--allow-private`); a refused URL registers nothing."""

from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from assistant.models import MCPServer
from assistant.tools import mcp_secret, mcp_tools, ssrf
from assistant.tools.mcp_schema import server_part


class Command(BaseCommand):
    help = "Register or update an MCP tool server (Streamable HTTP) and list its tools."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the server's name: the model sees NAME__TOOL")
        parser.add_argument("url", help="its Streamable HTTP endpoint, e.g. https://host/mcp")
        parser.add_argument("--secret-file", default="", help="a file holding the bearer secret")
        parser.add_argument("--tools", default="", help="comma list of tools to enable (all)")
        parser.add_argument(
            "--allow-private",
            action="store_true",
            help="allow a loopback, private or link-local address",
        )

    def handle(self, *args, name, url, secret_file, tools, allow_private, **options):
        try:
            server_part(name)
        except ValueError as exc:
            raise CommandError(f"{name!r}: {exc}.") from None
        try:
            async_to_sync(ssrf.check_url)(url, allow_private=allow_private)
        except ssrf.UnsafeURLError as exc:
            hint = "" if allow_private else " (use --allow-private for a server on such a network)"
            raise CommandError(f"{url} is refused: {exc}{hint}.") from None
        if secret_file:
            try:
                mcp_secret.read_file(secret_file)
            except ValueError as exc:
                raise CommandError(f"The server is not registered: {exc}.") from None
        server = MCPServer.objects.filter(name=name).first() or MCPServer(name=name)
        server.url = url
        server.secret_file = secret_file
        server.tools = ",".join(t.strip() for t in tools.split(",") if t.strip())
        server.allow_private = allow_private
        try:
            server.full_clean(validate_unique=server.pk is None)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        server.save()
        mcp_tools.clear_cache()
        listing = async_to_sync(mcp_tools.list_now)(mcp_tools.config_of(server))
        mcp_tools.save_status([(server.pk, listing)])
        if listing.error:
            raise CommandError(f"{name} is registered, but {listing.error}")
        for row in listing.rows:
            if row.get("refused"):
                self.stderr.write(f"left out {row['tool']}: {row['refused']}")
            elif not row.get("enabled"):
                self.stderr.write(f"not enabled: {row['tool']}")
            else:
                self.stdout.write(row["name"])

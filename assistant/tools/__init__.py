"""Server-side tools the model can call: the registry, the tools, the HTTP seam, the SSRF guard,
and the MCP tool servers staff add.

Public entry points live in `assistant.tools.registry` (`gemini_tools`, `server_function_names`,
`run`) and `assistant.tools.base` (`ToolResult`, `ToolError`, `Tool`). See docs/tools.md.
"""

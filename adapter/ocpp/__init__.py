"""Sans-I/O OCPP-J core: text in, decisions and text out. No sockets, no awaits."""

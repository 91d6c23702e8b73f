"""City networking (GB/T 28181-2016/2022): the hub joins the city platform as a lower-level platform (cascade).

An adapter of the hub (docs/design.md, "City networking"): it reads the same store and the same live
fan-out as the console and writes nothing the alarm path needs, so an upper platform that is down,
slow or refusing us never touches ingest, alarms or the console. Layout, the way the data goes:

- ``sip``: messages (parse/build), ``digest`` (RFC 2617), ``transport`` (UDP and TCP on asyncio);
- ``ids``: the 20-digit IDs of the hub, the nodes and their channels; ``manscdp``: the XML bodies;
- ``catalog``: what the store says, as catalog items and statuses; ``alarms``: events to Alarm notifies;
- ``registration``: REGISTER/keepalive state machine; ``invite``: Play sessions (media in ``media/``);
- ``adapter``: the one object the hub starts and stops, which routes incoming requests.

Full description: docs/gb28181.md.
"""

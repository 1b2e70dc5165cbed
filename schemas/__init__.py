"""The shared language of Chorus: commands, events, their envelope, and how they serialise.

- `schemas.fields`: field types and their limits; `schemas.clock`: the contract's time strings.
- `schemas.commands`: the command envelope and payloads; `schemas.bodies`: HTTP request bodies.
- `schemas.events`: the event payloads; `schemas.envelope`: the event envelope and hash chain.
- `schemas.mapper`: typed records to envelopes and back, with versions and upcasters.
- `schemas.jsonschema`: the generated JSON Schemas in `schemas/json/`.

Pure code: nothing here talks to Kafka, HTTP or a database, or reads the clock.
"""

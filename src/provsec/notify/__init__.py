"""`provsec notify`: Alertmanager webhook → notifications for on-call staff.

    payload.py    the webhook payload (Alertmanager JSON v4): the one parser (receiver, messages, register)
    messages.py   an alert group → email, SMS and Zalo texts (Vietnamese)
    channels.py   email (SMTP + STARTTLS), SMS through an HTTP gateway, Zalo Official Account; retries
    http.py       the one place that makes HTTP requests (urllib), with error classification
    zalo.py       the Zalo OA token store (refresh token replaced on every refresh, written atomically)
    metrics.py    delivery counters, in a registry the caller passes in
    register.py   the incident register (SQLite): one incident per group, events; incident_cli.py its CLI
    config.py     `provsec notify serve --config FILE`: the receiver's YAML, secrets from 0600 files
    server.py     the receiver: POST /alertmanager, ack links, /metrics, the worker and escalation threads
    ack.py        signed, expiring acknowledgement links and their pages
    escalation.py which rota level is due (wall-clock or working time), from the register alone
    heartbeat.py  the dead man's switch (the always-firing watchdog alert), state in a file
    cli.py        `provsec notify serve`
"""

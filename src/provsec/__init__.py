"""provsec: operations toolkit for a provincial Department of Information and Communications.

It carries out Điều 12.3c of QĐ 03/2022/QĐ-UBND: keep the shared provincial servers and WAN stable,
secure and monitored, and back up the provincial databases so they can be restored after an incident.
"""

__version__ = "0.1.0"

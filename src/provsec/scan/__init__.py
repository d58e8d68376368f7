"""Network exposure audit: what each host exposes, seen from the network, against what was approved.

One module per external tool: `nmapscan` runs nmap, `sshposture` uses paramiko; everything else works on
the typed results (`model`). Nothing is scanned or connected to before `scope` has checked the target
against the ranges the inventory declares."""

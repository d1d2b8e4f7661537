"""System tests: the installed command line as a subprocess, the Kafka-protocol broker, the wheel, the browser, deploy/."""

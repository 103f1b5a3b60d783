"""Live data as JSON and Server-Sent Events, agent reports and anomalies."""

"""The commands service: accounts, teams and client commands appended to Kafka."""

"""Adapters to Kafka: client configuration, topic creation, reachability, an asyncio producer."""

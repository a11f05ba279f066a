"""Thin confluent-kafka adapters: admin (topics), consumer, transactional producer."""

"""Storage adapters on Azure services: Cosmos DB, Table Storage, Event Hubs."""

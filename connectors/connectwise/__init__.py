"""ConnectWise Manage (ConnectWise PSA): client, connector and sandbox emulator."""

from connectors.connectwise.connector import ConnectWiseConnector, ConnectWiseSettings

__all__ = ["ConnectWiseConnector", "ConnectWiseSettings"]

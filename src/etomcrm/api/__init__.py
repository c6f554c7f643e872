"""The HTTP face of etomcrm: TMF Open API v4 routers over the service layer."""

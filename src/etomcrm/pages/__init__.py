"""The pages people use in a browser (issue 11): server-rendered HTML beside the API,
through the same service layer, with the same sign-in, roles and customer scoping."""

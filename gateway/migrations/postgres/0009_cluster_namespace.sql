-- The namespace kubeconfigs exported for the cluster name in their context: the registering
-- kubeconfig's context namespace, or one given through the API.
ALTER TABLE clusters ADD COLUMN namespace TEXT;

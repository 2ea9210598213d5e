/** Azure Blob Storage backend. `@azure/*` is imported only inside this folder. */
export { openAzureBackend } from './azure.js';
export { azureOptionsFromEnv, endpointSuffixForCloud, type AzureOptions, type AzureBslConfig } from './options.js';

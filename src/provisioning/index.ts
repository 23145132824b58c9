export { ProvisioningApi } from "./api.js";
export { ProvisioningAuth } from "./auth.js";

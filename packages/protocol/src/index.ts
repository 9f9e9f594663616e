export * from './errors.js';
export * from './gen/ward/tunnel/v1/tunnel_pb.js';
export { grpcServiceDefinition } from './grpc-service.js';

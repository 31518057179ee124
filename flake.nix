{
  description = "hydra-orchestrator: run many AI coding agents at once, each in its own tmux session";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachSystem [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ] (system:
      let
        pkgs = import nixpkgs { inherit system; };
        runtimeDeps = [ pkgs.tmux pkgs.git pkgs.bash pkgs.coreutils pkgs.procps ];
        hydra = pkgs.rustPlatform.buildRustPackage {
          pname = "hydra-orchestrator";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "hydra-cli" ];
          # The test suites drive real tmux servers and git repositories; run them with
          # `cargo test --workspace` in the dev shell rather than in the sandbox.
          doCheck = false;
          nativeBuildInputs = [ pkgs.makeWrapper ];
          postInstall = ''
            wrapProgram $out/bin/hydra --prefix PATH : ${pkgs.lib.makeBinPath runtimeDeps}
          '';
          meta = {
            description = "Multi-session AI agent orchestration on tmux";
            license = pkgs.lib.licenses.mit;
            mainProgram = "hydra";
          };
        };
      in
      {
        packages.default = hydra;
        packages.hydra-orchestrator = hydra;

        apps.default = {
          type = "app";
          program = "${hydra}/bin/hydra";
        };

        devShells.default = pkgs.mkShell {
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.rust-analyzer pkgs.jq ] ++ runtimeDeps;
        };
      });
}

<#
.SYNOPSIS
    Movie Booking on Windows: the whole system in Docker Desktop (docker compose).

.DESCRIPTION
    up      build the images and start whatever is not running (containers that run are
            left alone, so after a crash it starts only what died); waits until the gateway answers
    down    stop and remove the containers (data volumes are kept; add -Volumes to wipe them)
    status  every container (exited ones too), its health, and the URLs; exit 1 with a line
            naming each service that is down (not running, or not healthy)
    logs    follow the logs (all, or one service: .\scripts\run_local.ps1 logs booking-service)

.EXAMPLE
    .\scripts\run_local.ps1 up
    .\scripts\run_local.ps1 logs payment-service
    .\scripts\run_local.ps1 down -Volumes
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet("up", "down", "status", "logs")]
    [string]$Command = "status",

    [Parameter(Position = 1)]
    [string]$Service = "",

    [switch]$Volumes,

    [int]$TimeoutSeconds = 300
)

$ErrorActionPreference = "Stop"
$Root = Split-Path -Parent $PSScriptRoot
$ComposeFile = Join-Path $Root "docker-compose.yml"

$Urls = [ordered]@{
    "API gateway"          = "http://localhost"
    "Auth Swagger"         = "http://localhost:8001/docs"
    "Movie Swagger"        = "http://localhost:8002/docs"
    "Booking Swagger"      = "http://localhost:8003/docs"
    "Payment Swagger"      = "http://localhost:8004/docs"
    "Notification Swagger" = "http://localhost:8005/docs"
    "RabbitMQ UI"          = "http://localhost:15672"
    "Grafana"              = "http://localhost:3000"
    "Prometheus"           = "http://localhost:9090"
    "Mailpit (mail)"       = "http://localhost:8025"
    "Jaeger (traces)"      = "http://localhost:16686"
}

function Invoke-Compose {
    param([string[]]$Arguments)
    & docker compose -f $ComposeFile --project-directory $Root @Arguments
    if ($LASTEXITCODE -ne 0) {
        throw "docker compose $($Arguments -join ' ') failed (exit $LASTEXITCODE)"
    }
}

function Assert-Docker {
    if (-not (Get-Command docker -ErrorAction SilentlyContinue)) {
        throw "docker was not found: install Docker Desktop and start it."
    }
    & docker info *> $null
    if ($LASTEXITCODE -ne 0) {
        throw "the Docker engine is not running: start Docker Desktop."
    }
}

function Wait-Gateway {
    $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
    while ((Get-Date) -lt $deadline) {
        try {
            $response = Invoke-WebRequest -Uri "http://localhost/health" -UseBasicParsing -TimeoutSec 3
            if ($response.StatusCode -eq 200) { return }
        } catch {
            Start-Sleep -Seconds 2
        }
    }
    throw "the gateway did not answer within $TimeoutSeconds s: .\scripts\run_local.ps1 status / logs"
}

function Get-DownServices {
    # The long-running services (not the *-migrate one-shots) without a running, healthy container.
    # `ps --format json` prints one object a line (newer Compose) or one array (older).
    $services = & docker compose -f $ComposeFile --project-directory $Root config --services |
        Where-Object { $_ -and $_ -notlike "*-migrate" }
    $containers = @(& docker compose -f $ComposeFile --project-directory $Root ps --all --format json |
        Where-Object { $_.Trim() } | ForEach-Object { $_ | ConvertFrom-Json } | ForEach-Object { $_ })
    foreach ($service in $services) {
        $up = $containers | Where-Object {
            $_.Service -eq $service -and $_.State -eq "running" -and [string]$_.Health -in @("", "healthy")
        }
        if (-not $up) { $service }
    }
}

function Show-Urls {
    foreach ($entry in $Urls.GetEnumerator()) {
        Write-Host ("  {0,-22} {1}" -f $entry.Key, $entry.Value)
    }
}

Assert-Docker
switch ($Command) {
    "up" {
        Invoke-Compose @("up", "-d", "--build")
        Write-Host "waiting for the gateway..."
        Wait-Gateway
        Write-Host "Movie Booking is up:"
        Show-Urls
    }
    "down" {
        $arguments = @("down", "--remove-orphans")
        if ($Volumes) { $arguments += "--volumes" }
        Invoke-Compose $arguments
    }
    "status" {
        Invoke-Compose @("ps", "--all", "--format", "table {{.Service}}\t{{.State}}\t{{.Health}}\t{{.Ports}}")
        Show-Urls
        $down = @(Get-DownServices)
        if ($down.Count -gt 0) {
            Write-Host "down: $($down -join ' ')"
            exit 1
        }
        Write-Host "all services up"
    }
    "logs" {
        $arguments = @("logs", "--follow", "--tail", "200")
        if ($Service) { $arguments += $Service }
        Invoke-Compose $arguments
    }
}

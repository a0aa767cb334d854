# End to end through the gateway, against a running system (Windows PowerShell 5.1 or PowerShell 7).
# The same flow as scripts/e2e_test.sh:
#
#   health of all five -> register -> login -> browse movies -> pick a future showtime
#   -> book two available seats -> a declined card (402, still payable) -> pay with another
#   (test card 4242 4242 4242 4242) -> booking confirmed,
#   tickets notification recorded, mail delivered -> list bookings -> two tickets with QR codes
#   -> the admin makes a staff user -> a scan before the doors open is refused (too_early)
#   -> cancel -> refund (payment refunded, booking cancelled) -> the two seats are available
#   again -> the cancelled booking's ticket is void at the door -> at the door: the admin
#   schedules a showtime 45 minutes away (a new 4-seat hall "E2E door ..."), a seat is booked
#   and paid, staff admit its ticket, a second scan is refused (already_admitted), and the
#   booking can no longer be cancelled (tickets_admitted).
#
# One PASS/FAIL line per step and a summary; exit 1 on any failure. After a failed step the
# remaining steps are reported as SKIP. Every wait polls with a deadline.
#
#   .\scripts\e2e_test.ps1 [-BaseUrl http://localhost] [-MailDir var\local\mail] [-WaitSeconds 45]
#   (or the environment variables BASE_URL, MAIL_DIR, E2E_WAIT); the bootstrap admin (grants the
#   staff role, schedules the door showtime): -AdminUsername / ADMIN_USERNAME [admin],
#   -AdminPassword / ADMIN_PASSWORD [AdminDevPass123!] (auth-service's ADMIN_PASSWORD)
param(
    [string]$BaseUrl = $(if ($env:BASE_URL) { $env:BASE_URL } else { "http://localhost" }),
    [string]$MailDir = $(if ($env:MAIL_DIR) { $env:MAIL_DIR } else { "var/local/mail" }),
    [int]$WaitSeconds = $(if ($env:E2E_WAIT) { [int]$env:E2E_WAIT } else { 45 }),
    [string]$AdminUsername = $(if ($env:ADMIN_USERNAME) { $env:ADMIN_USERNAME } else { "admin" }),
    [string]$AdminPassword = $(if ($env:ADMIN_PASSWORD) { $env:ADMIN_PASSWORD } else { "AdminDevPass123!" })
)

$ErrorActionPreference = "Stop"
$BaseUrl = $BaseUrl.TrimEnd("/")
$RunId = "{0}{1}" -f [DateTimeOffset]::UtcNow.ToUnixTimeSeconds(), (Get-Random -Maximum 100000)
$Username = "e2e$RunId"
$Email = "$Username@example.com"
$Password = "E2e-Flow-Pass-$(Get-Random -Maximum 100000)-42"
$Card = "4242424242424242"
$DeclinedCard = "4000000000000002"
$State = @{
    Token = $null; ShowtimeId = $null; Seats = @(); BookingId = $null; PaymentId = $null
    TicketCode = $null; AdminToken = $null; StaffToken = $null; DoorShowtime = $null; DoorBooking = $null; DoorCode = $null
}
$Counts = @{ Passed = 0; Failed = 0; Skipped = 0 }
$script:Broken = $false

# --- helpers ---------------------------------------------------------------------------------

function Invoke-Api {
    # Returns @{ Status = <int>; Body = <object or $null>; Type = <content type> }; never throws on
    # an HTTP error status. -Token: another caller's token (default: the user's).
    param([string]$Method, [string]$Path, $Json = $null, $Form = $null, [hashtable]$Headers = @{}, [string]$Token = $State.Token)
    $type = ""
    $headers = @{} + $Headers
    if ($Token) { $headers["Authorization"] = "Bearer $Token" }
    $request = @{ Method = $Method; Uri = "$BaseUrl$Path"; Headers = $headers; TimeoutSec = 10; UseBasicParsing = $true }
    if ($null -ne $Json) { $request.Body = ($Json | ConvertTo-Json -Depth 5 -Compress); $request.ContentType = "application/json" }
    if ($null -ne $Form) { $request.Body = $Form; $request.ContentType = "application/x-www-form-urlencoded" }
    try {
        $response = Invoke-WebRequest @request
        $status = [int]$response.StatusCode
        $content = $response.Content
        $type = "$($response.Headers['Content-Type'])"
    } catch {
        if ($null -eq $_.Exception.Response) { return @{ Status = 0; Body = $null; Text = $_.Exception.Message } }
        $status = [int]$_.Exception.Response.StatusCode
        $content = $_.ErrorDetails.Message
    }
    $body = $null
    if ($content) { try { $body = $content | ConvertFrom-Json } catch { $body = $null } }
    return @{ Status = $status; Body = $body; Text = "$content"; Type = $type }
}

function Assert-Status {
    param($Response, [int[]]$Expected)
    if ($Expected -notcontains $Response.Status) {
        $text = $Response.Text
        if ($text.Length -gt 300) { $text = $text.Substring(0, 300) }
        throw "got HTTP $($Response.Status): $text"
    }
}

function Wait-Until {
    # Calls $Probe until it returns $true or $Seconds pass; throws $What on timeout.
    param([scriptblock]$Probe, [string]$What, [int]$Seconds = $WaitSeconds)
    $deadline = (Get-Date).AddSeconds($Seconds)
    while ((Get-Date) -lt $deadline) {
        if (& $Probe) { return }
        Start-Sleep -Milliseconds 500
    }
    if (-not (& $Probe)) { throw "not within $Seconds s: $What" }
}

function Invoke-Step {
    param([string]$Description, [scriptblock]$Action)
    if ($script:Broken) { Write-Output "SKIP  $Description"; $Counts.Skipped++; return }
    $watch = [Diagnostics.Stopwatch]::StartNew()
    try {
        & $Action
        Write-Output ("PASS  {0} ({1:N1}s)" -f $Description, $watch.Elapsed.TotalSeconds)
        $Counts.Passed++
    } catch {
        Write-Output ("FAIL  {0} ({1:N1}s)" -f $Description, $watch.Elapsed.TotalSeconds)
        Write-Output "      $($_.Exception.Message)"
        $Counts.Failed++
        $script:Broken = $true
    }
}

function Test-Health {
    param([string]$Path)
    $response = Invoke-Api GET $Path
    Assert-Status $response 200
    if ($response.Body.status -ne "ok") { throw "$Path says $($response.Text)" }
}

function ConvertTo-Instant {
    # PowerShell 7's ConvertFrom-Json already turns ISO 8601 strings into DateTime; 5.1 does not.
    param($Value)
    if ($Value -is [DateTime]) { return [DateTimeOffset]$Value }
    return [DateTimeOffset]::Parse($Value, [Globalization.CultureInfo]::InvariantCulture)
}

function Get-BookingStatus {
    (Invoke-Api GET "/api/bookings/bookings/$($State.BookingId)").Body.status
}

function Get-Token {
    param([string]$User, [string]$Secret)
    $response = Invoke-Api POST "/api/auth/token" -Form @{ username = $User; password = $Secret } -Token ""
    Assert-Status $response 200
    return $response.Body.access_token
}

function Invoke-Scan {
    # Staff post a ticket code to the check-in.
    param([string]$Code)
    Invoke-Api POST "/api/bookings/checkin" -Json @{ code = $Code } -Token $State.StaffToken
}

function Assert-Refused {
    param($Response, [string]$Code)
    Assert-Status $Response 409
    if ($Response.Body.error.code -ne $Code) { throw "expected $Code, got $($Response.Text)" }
    Write-Output "      409 ${Code}: $($Response.Body.error.message)"
}

function Get-SeatMap {
    $response = Invoke-Api GET "/api/movies/showtimes/$($State.ShowtimeId)/seats"
    Assert-Status $response 200
    return $response.Body
}

# --- the flow --------------------------------------------------------------------------------

Write-Output "End to end against $BaseUrl (user $Username, mails in $MailDir)"

Invoke-Step "gateway /health" { Test-Health "/health" }
Invoke-Step "auth-service health via the gateway" { Test-Health "/api/auth/health" }
Invoke-Step "movie-service health via the gateway" { Test-Health "/api/movies/health" }
Invoke-Step "booking-service health via the gateway" { Test-Health "/api/bookings/health" }
Invoke-Step "payment-service health via the gateway" { Test-Health "/api/payments/health" }
Invoke-Step "notification-service health via the gateway" { Test-Health "/api/notifications/health" }

Invoke-Step "register $Username" {
    $response = Invoke-Api POST "/api/auth/register" -Json @{
        email = $Email; username = $Username; password = $Password; full_name = "E2E Tester"
    }
    Assert-Status $response 201
    if ($response.Body.username -ne $Username) { throw "unexpected user: $($response.Text)" }
}

Invoke-Step "log in (token) and verify it" {
    $response = Invoke-Api POST "/api/auth/token" -Form @{ username = $Username; password = $Password }
    Assert-Status $response 200
    $State.Token = $response.Body.access_token
    $verify = Invoke-Api GET "/api/auth/verify"
    Assert-Status $verify 200
    if ($verify.Body.username -ne $Username) { throw "verify names $($verify.Text)" }
}

Invoke-Step "browse movies" {
    $response = Invoke-Api GET "/api/movies/movies?limit=20"
    Assert-Status $response 200
    if ($response.Body.total -lt 1) { throw "no movies" }
}

Invoke-Step "pick a future showtime with two free seats" {
    $response = Invoke-Api GET "/api/movies/showtimes?limit=100"
    Assert-Status $response 200
    $soon = [DateTimeOffset]::UtcNow.AddMinutes(90)  # well before the 30-minute cancellation cut-off
    foreach ($showtime in $response.Body.items) {
        if ((ConvertTo-Instant $showtime.starts_at) -le $soon) { continue }
        $State.ShowtimeId = $showtime.id
        if ((Get-SeatMap).available -ge 2) { Write-Output "      showtime $($showtime.id)"; return }
    }
    throw "no upcoming showtime with two available seats"
}

Invoke-Step "book two seats (pending)" {
    foreach ($attempt in 1..5) {
        $free = @((Get-SeatMap).seats | Where-Object { $_.status -eq "available" } | Select-Object -First 2 | ForEach-Object { $_.seat_id })
        $response = Invoke-Api POST "/api/bookings/book" -Json @{ showtime_id = $State.ShowtimeId; seat_ids = $free }
        if ($response.Status -eq 201) {
            if ($response.Body.status -ne "pending") { throw "not pending: $($response.Text)" }
            $State.BookingId = $response.Body.id
            $State.Seats = @($response.Body.seats)
            Write-Output "      booking $($State.BookingId) seats $($State.Seats -join ',') total $($response.Body.total_amount)"
            return
        }
        Assert-Status $response 409
    }
    throw "five 409s in a row"
}

Invoke-Step "a declined card (4000 0000 0000 0002): 402, the booking stays payable" {
    $response = Invoke-Api POST "/api/payments/process" -Headers @{ "Idempotency-Key" = "e2e-declined-$RunId" } -Json @{
        booking_id = $State.BookingId; payment_method = "credit_card"; card_number = $DeclinedCard
    }
    Assert-Status $response 402
    if ($response.Body.error.code -ne "payment_declined") { throw "not a decline: $($response.Text)" }
    if ($response.Body.error.details.attempts_left -lt 1) { throw "no attempts left: $($response.Text)" }
    if ((Get-BookingStatus) -ne "pending") { throw "the booking is no longer payable after one decline" }
}

Invoke-Step "pay with another card, 4242 4242 4242 4242" {
    $response = Invoke-Api POST "/api/payments/process" -Headers @{ "Idempotency-Key" = "e2e-$RunId" } -Json @{
        booking_id = $State.BookingId; payment_method = "credit_card"; card_number = $Card
    }
    Assert-Status $response 201
    if ($response.Body.status -ne "succeeded") { throw "payment $($response.Text)" }
    $State.PaymentId = $response.Body.id
}

Invoke-Step "booking confirmed" { Wait-Until { (Get-BookingStatus) -eq "confirmed" } "booking confirmed" }

Invoke-Step "tickets notification recorded as sent" {
    Wait-Until {
        $page = (Invoke-Api GET "/api/notifications/notifications?limit=50").Body
        [bool]($page.items | Where-Object { $_.template -eq "tickets" -and $_.status -eq "sent" })
    } "a sent tickets notification"
}

Invoke-Step "tickets mail delivered to $Email" {
    $reference = ($State.BookingId -replace "-", "").Substring(0, 8).ToUpper()
    Wait-Until {
        if (-not (Test-Path $MailDir)) { return $false }
        $mails = Get-ChildItem -Path $MailDir -Filter *.eml | Where-Object {
            $text = Get-Content -Raw $_.FullName
            ($text -match "(?im)^To:.*$([regex]::Escape($Email))") -and $text.Contains($reference)
        }
        [bool]$mails
    } "an .eml to $Email with booking reference $reference in $MailDir"
}

Invoke-Step "booking listed under my bookings" {
    $response = Invoke-Api GET "/api/bookings/bookings?limit=20"
    Assert-Status $response 200
    if (-not ($response.Body.items | Where-Object { $_.id -eq $State.BookingId })) { throw "not listed" }
}

Invoke-Step "two tickets, each with its QR code" {
    $response = Invoke-Api GET "/api/bookings/bookings/$($State.BookingId)/tickets"
    Assert-Status $response 200
    $tickets = @($response.Body)
    if ($tickets.Count -ne 2 -or ($tickets | Where-Object { $_.status -ne "valid" })) { throw "tickets: $($response.Text)" }
    $State.TicketCode = $tickets[0].code
    $qr = Invoke-Api GET $tickets[0].qr_url
    Assert-Status $qr 200
    if ($qr.Type -notlike "image/svg+xml*") { throw "the QR code is $($qr.Type)" }
    Write-Output "      tickets $(($tickets | ForEach-Object { $_.seat }) -join ','), QR at $($tickets[0].qr_url)"
}

Invoke-Step "the admin makes a staff user ($AdminUsername grants the role)" {
    $State.AdminToken = Get-Token $AdminUsername $AdminPassword
    $staffName = "${Username}s"
    $created = Invoke-Api POST "/api/auth/register" -Token "" -Json @{ email = "$staffName@example.com"; username = $staffName; password = $Password }
    Assert-Status $created 201
    $granted = Invoke-Api POST "/api/auth/users/$($created.Body.id)/roles" -Json @{ role = "staff" } -Token $State.AdminToken
    Assert-Status $granted 200
    if (@($granted.Body.roles) -notcontains "staff") { throw "roles: $($granted.Text)" }
    $State.StaffToken = Get-Token $staffName $Password  # the token issued after the grant carries the role
    Write-Output "      staff user $staffName"
}

Invoke-Step "a scan before the doors open: 409 too_early" { Assert-Refused (Invoke-Scan $State.TicketCode) "too_early" }

Invoke-Step "cancel the booking" {
    $response = Invoke-Api POST "/api/bookings/bookings/$($State.BookingId)/cancel"
    Assert-Status $response 200
    if ($response.Body.status -ne "cancelled") { throw "cancel answered $($response.Text)" }
}

Invoke-Step "refund: payment refunded, booking cancelled" {
    Wait-Until { (Invoke-Api GET "/api/payments/payments/$($State.PaymentId)").Body.status -eq "refunded" } "payment refunded"
    Wait-Until { (Get-BookingStatus) -eq "cancelled" } "booking cancelled"
}

Invoke-Step "the two seats are available again" {
    Wait-Until {
        $mine = (Get-SeatMap).seats | Where-Object { $State.Seats -contains $_.seat_id }
        -not ($mine | Where-Object { $_.status -ne "available" })
    } "seats $($State.Seats -join ',') available"
}

Invoke-Step "the cancelled booking's ticket at the door: 409 ticket_void" {
    Assert-Refused (Invoke-Scan $State.TicketCode) "ticket_void"
}

Invoke-Step "the admin schedules a showtime 45 minutes away (doors open)" {
    # Doors open 60 minutes before the start, cancellations close 30 before.
    $theater = (Invoke-Api GET "/api/movies/theaters?limit=1").Body.items[0].id
    $movie = (Invoke-Api GET "/api/movies/movies?limit=1").Body.items[0].id
    $hall = Invoke-Api POST "/api/movies/auditoriums" -Token $State.AdminToken -Json @{
        theater_id = $theater; name = "E2E door $RunId"; layout = @{ rows = @(@{ seats = 4 }) }
    }
    Assert-Status $hall 201
    $starts = [DateTimeOffset]::UtcNow.AddMinutes(45).ToString("o")
    $showtime = Invoke-Api POST "/api/movies/showtimes" -Token $State.AdminToken -Json @{
        movie_id = $movie; auditorium_id = $hall.Body.id; starts_at = $starts; currency = "VND"; prices = @{ standard = 90000 }
    }
    Assert-Status $showtime 201
    $State.DoorShowtime = $showtime.Body.id
    Write-Output "      showtime $($State.DoorShowtime) at $starts"
}

Invoke-Step "book and pay a seat of it, tickets issued" {
    $booking = Invoke-Api POST "/api/bookings/book" -Json @{ showtime_id = $State.DoorShowtime; seat_ids = @("A1") }
    Assert-Status $booking 201
    $State.DoorBooking = $booking.Body.id
    $paid = Invoke-Api POST "/api/payments/process" -Headers @{ "Idempotency-Key" = "e2e-door-$RunId" } -Json @{
        booking_id = $State.DoorBooking; payment_method = "credit_card"; card_number = $Card
    }
    Assert-Status $paid 201
    Wait-Until { (Invoke-Api GET "/api/bookings/bookings/$($State.DoorBooking)").Body.status -eq "confirmed" } "door booking confirmed"
    $tickets = Invoke-Api GET "/api/bookings/bookings/$($State.DoorBooking)/tickets"
    Assert-Status $tickets 200
    $State.DoorCode = @($tickets.Body)[0].code
}

Invoke-Step "staff admit the ticket" {
    $response = Invoke-Scan $State.DoorCode
    Assert-Status $response 200
    if (-not $response.Body.admitted) { throw "not admitted: $($response.Text)" }
    Write-Output "      admitted: seat $($response.Body.seat), $($response.Body.movie_title), $($response.Body.auditorium)"
}

Invoke-Step "a second scan of it: 409 already_admitted" { Assert-Refused (Invoke-Scan $State.DoorCode) "already_admitted" }

Invoke-Step "the admitted booking cannot be cancelled: 409 tickets_admitted" {
    Assert-Refused (Invoke-Api POST "/api/bookings/bookings/$($State.DoorBooking)/cancel") "tickets_admitted"
}

Write-Output ""
Write-Output ("summary: {0} passed, {1} failed, {2} skipped" -f $Counts.Passed, $Counts.Failed, $Counts.Skipped)
if ($Counts.Failed -gt 0 -or $Counts.Skipped -gt 0) { exit 1 }
exit 0
